"""Serve the emulated Keysight scope of a virtual bench over its raw SCPI socket."""

from __future__ import annotations

from pathlib import Path

from simulator.instruments.host import ScopeHost
from simulator.instruments.keysight import KeysightInfiniiVision
from simulator.instruments.scope_model import load_scope_model
from simulator.instruments.socket_server import ScpiSocketServer


def serve_keysight(host: ScopeHost, model_path: Path | str, bind: str, port: int) -> ScpiSocketServer:
    scope = KeysightInfiniiVision(host, load_scope_model(model_path))
    return ScpiSocketServer(scope.session, host=bind, port=port).start()

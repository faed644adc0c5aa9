"""Serve the emulated scope of a virtual bench over its raw SCPI socket: the Keysight InfiniiVision or
the Rigol DS1000Z, whichever the scope model fixture describes."""

from __future__ import annotations

from pathlib import Path

from simulator.instruments.host import ScopeHost
from simulator.instruments.keysight import KeysightInfiniiVision
from simulator.instruments.rigol import RigolDS1000Z
from simulator.instruments.scope_model import ScopeModel, load_scope_model
from simulator.instruments.socket_server import ScpiSocketServer

RIGOL_RAW_SOCKET_PORT = 5555  # DS1000Z raw SCPI socket (Keysight InfiniiVision: 5025)
KEYSIGHT_RAW_SOCKET_PORT = 5025


def is_rigol(model: ScopeModel) -> bool:
    """Whether the fixture describes a Rigol scope (by its *IDN? manufacturer)."""
    return model.identity.manufacturer.upper().startswith("RIGOL")


def raw_socket_port(model: ScopeModel) -> int:
    """The raw SCPI socket port the real instrument of this model listens on."""
    return RIGOL_RAW_SOCKET_PORT if is_rigol(model) else KEYSIGHT_RAW_SOCKET_PORT


def serve_keysight(host: ScopeHost, model_path: Path | str, bind: str, port: int) -> ScpiSocketServer:
    scope = KeysightInfiniiVision(host, load_scope_model(model_path))
    return ScpiSocketServer(scope.session, host=bind, port=port).start()


def serve_rigol(host: ScopeHost, model_path: Path | str, bind: str, port: int) -> ScpiSocketServer:
    scope = RigolDS1000Z(host, load_scope_model(model_path))
    return ScpiSocketServer(scope.session, host=bind, port=port).start()


def serve_scope(host: ScopeHost, model_path: Path | str, bind: str, port: int) -> ScpiSocketServer:
    """The emulator the fixture's identity names (Rigol DS1000Z, else Keysight InfiniiVision)."""
    serve = serve_rigol if is_rigol(load_scope_model(model_path)) else serve_keysight
    return serve(host, model_path, bind, port)


def make_scope(host: ScopeHost, model_path: Path | str) -> KeysightInfiniiVision | RigolDS1000Z:
    """The emulator the fixture's identity names, not yet served."""
    model = load_scope_model(model_path)
    return RigolDS1000Z(host, model) if is_rigol(model) else KeysightInfiniiVision(host, model)

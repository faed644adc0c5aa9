"""Where a running ``stimrig serve`` says what it serves, so that other commands (``stimrig bench
check``) can find a simulated bench's 'auto' addresses: a small JSON file, written when the bench is up
and removed when it stops. A stale file (its process gone) is ignored."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def default_state_path() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"stimrig-serve-{os.getuid()}.json"


@dataclass(frozen=True)
class ServeState:
    pid: int
    bench: str
    resources: dict[str, Any]


def write_serve_state(bench: str, resources: dict[str, Any], path: Path | None = None) -> Path:
    target = path or default_state_path()
    tmp = target.with_name(target.name + ".partial")
    tmp.write_text(json.dumps({"pid": os.getpid(), "bench": bench, "resources": resources}))
    os.replace(tmp, target)
    return target


def remove_serve_state(path: Path | None = None) -> None:
    target = path or default_state_path()
    try:
        state = json.loads(target.read_text())
        if state.get("pid") == os.getpid():
            target.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_serve_state(path: Path | None = None) -> ServeState | None:
    target = path or default_state_path()
    try:
        raw = json.loads(target.read_text())
        state = ServeState(int(raw["pid"]), str(raw["bench"]), dict(raw["resources"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if _alive(state.pid) else None

"""The audit trail: who ran what, when, on which bench and with which fixtures (by SHA-256).

``run_context`` is recorded as the first record of every run's chained results (and so in its
bundle); ``AuditTrail`` appends one chained line per run start and end to ``<results>/audit.jsonl``,
across runs, never rewriting an earlier line (21 CFR 11.10(e): a computer-generated, time-stamped
audit trail that does not obscure earlier entries).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from rig import __version__
from rig.records.chain import ChainedLog
from rig.results import file_sha256, utc_now

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIT_FILE = "audit.jsonl"
PACKAGES = ("pytest", "numpy", "simpy", "pyvisa", "pyvisa-py", "pyserial", "pydantic", "allure-pytest", "jinja2",
            "matplotlib", "bleak", "bumble", "dask", "hypothesis", "rich", "cobs", "PyYAML")


def operator_name(given: str | None = None) -> str:
    """Who runs it: --operator, else $STIMRIG_OPERATOR, else the login name."""
    if given:
        return given
    env = os.environ.get("STIMRIG_OPERATOR", "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes (None outside a git checkout)."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "note": "not a git checkout (or git is not installed)"}
    return {"commit": commit, "dirty": bool(dirty)}


def package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def fixture_hashes(paths: dict[str, Path]) -> dict[str, dict[str, str]]:
    """role -> {path, sha256} of each fixture file the run used."""
    out: dict[str, dict[str, str]] = {}
    for role, path in paths.items():
        shown = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
        out[role] = {"path": shown, "sha256": file_sha256(path) if path.is_file() else "missing"}
    return out


def run_context(*, operator: str, fixtures: dict[str, Path], argv: list[str] | None = None) -> dict[str, Any]:
    return {
        "operator": operator,
        "host": socket.gethostname(),
        "command": list(sys.argv if argv is None else argv),
        "working_directory": os.getcwd(),
        "stimrig_version": __version__,
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "fixtures": fixture_hashes(fixtures),
    }


def fixtures_digest(fixtures: dict[str, dict[str, str]]) -> str:
    """One SHA-256 over every fixture's role, path and hash: equal digests, identical fixtures."""
    text = "\n".join(f"{role} {f['path']} {f['sha256']}" for role, f in sorted(fixtures.items()))
    return hashlib.sha256(text.encode()).hexdigest()


class AuditTrail:
    """``<results root>/audit.jsonl``: one chained line per run start and end, across runs."""

    def __init__(self, results_root: Path) -> None:
        self.path = results_root / AUDIT_FILE

    def append(self, event: str, **fields: Any) -> None:
        log = ChainedLog(self.path, exclusive=False)
        try:
            log.append({"event": event, "utc": utc_now(), **fields})
        finally:
            log.close()

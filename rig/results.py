"""The run's results log: hash-chained JSON lines (rig.records.chain), each flushed and fsynced as it
is written, so a run killed at any moment leaves every record written so far intact and verifiable.

Every record carries ``kind``, ``utc`` and ``simulated``; the first (``run_start``) also carries the
log's ``schema``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rig.records.chain import ChainedLog, ChainHead

SIMULATED_MARK = "SIMULATED — not evidence for a real device"  # on every page and in every file of a simulated run
RESULTS_SCHEMA = "stimrig.results/1"
RESULTS_FILE = "results.jsonl"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ResultsLog:
    def __init__(self, directory: Path, *, simulated: bool) -> None:
        self.directory = directory
        self.simulated = simulated
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / RESULTS_FILE
        self._chain = ChainedLog(self.path)  # a new file: a run never overwrites an earlier one

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"kind": kind, "utc": utc_now(), "simulated": self.simulated}
        if self._chain.head.records == 0:
            record["schema"] = RESULTS_SCHEMA
        return self._chain.append({**record, **fields})

    def save_file(self, relative: str, data: bytes, **fields: Any) -> Path:
        """Write an evidence file into the run directory as it happens (complete or not at all: a
        temporary name, fsync, rename) and chain a record of its SHA-256, so that even a run killed
        later leaves it verifiable."""
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.write("evidence_file", path=relative, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
                   **fields)
        return path

    @property
    def chain_head(self) -> ChainHead:
        return self._chain.head

    def close(self) -> None:
        self._chain.close()

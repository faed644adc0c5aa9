"""Append-only results log: one JSON object per line, flushed and fsynced as each is written.

A run killed at any moment leaves every record written so far intact on disk.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class ResultsLog:
    def __init__(self, directory: Path, *, simulated: bool) -> None:
        self.directory = directory
        self.simulated = simulated
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "results.jsonl"
        self._fh = self.path.open("x", encoding="utf-8")  # "x": a run never overwrites an earlier one

    def write(self, kind: str, **fields: Any) -> None:
        record = {"kind": kind, "utc": utc_now(), "simulated": self.simulated, **fields}
        self._fh.write(json.dumps(record, default=str, allow_nan=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


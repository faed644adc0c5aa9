"""Hash-chained, append-only JSON lines.

Each line is one JSON object carrying ``seq`` (0, 1, 2, ...) and ``prev``, the SHA-256 (hex) of the
previous line's bytes without its newline (GENESIS for the first). Each is flushed and fsynced before
``append`` returns, so a run killed at any moment leaves every record written so far on disk, and
changing, removing or reordering any of them breaks the chain at that line. (The last line is
protected by the bundle's manifest and seal, rig.records.bundle.)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def encode_record(record: dict[str, Any]) -> bytes:
    return json.dumps(record, default=str, allow_nan=False, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class ChainHead:
    records: int  # how many records the chain holds
    head: str  # the hash of its last line (GENESIS when empty)


class ChainedLog:
    """Appends hash-chained records to ``path``. ``exclusive``: a new file (a run's results never
    overwrite an earlier run's); otherwise the chain in an existing file is continued (the audit log),
    under an exclusive lock so that concurrent runs interleave whole, correctly chained records."""

    def __init__(self, path: Path, *, exclusive: bool = True) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._exclusive = exclusive
        self._fh = path.open("xb" if exclusive else "ab")
        self._head = ChainHead(0, GENESIS)

    @property
    def head(self) -> ChainHead:
        return self._head

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write ``record`` with its ``seq`` and ``prev``; returns it as written."""
        if self._exclusive:
            return self._write(record, self._head)
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        try:
            return self._write(record, read_head(self.path))
        finally:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)

    def _write(self, record: dict[str, Any], head: ChainHead) -> dict[str, Any]:
        chained = {"seq": head.records, "prev": head.head, **record}
        line = encode_record(chained)
        self._fh.write(line + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._head = ChainHead(head.records + 1, line_hash(line))
        return chained

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def read_head(path: Path) -> ChainHead:
    """The head of an existing chain (its complete lines; a last line cut short is ignored and will be
    reported by verification)."""
    if not path.exists():
        return ChainHead(0, GENESIS)
    lines = path.read_bytes().split(b"\n")[:-1]  # the piece after the last newline is not a record
    if not lines:
        return ChainHead(0, GENESIS)
    return ChainHead(len(lines), line_hash(lines[-1]))


@dataclass
class ChainReport:
    """What checking a chained file found: ``records`` verified (in order), and the first problem."""

    path: Path
    records: list[dict[str, Any]]
    head: str
    problem: str | None = None  # tampering or corruption: the chain breaks here
    truncated: str | None = None  # a last line cut short (a killed writer): not tampering

    @property
    def intact(self) -> bool:
        return self.problem is None


def check_chain(path: Path, name: str | None = None) -> ChainReport:
    """Check every line of the chained file at ``path``; never raises for bad content."""
    label = name or path.name
    data = path.read_bytes()
    pieces = data.split(b"\n")
    complete, tail = pieces[:-1], pieces[-1]
    report = ChainReport(path, [], GENESIS)
    for n, line in enumerate(complete, start=1):
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            report.problem = f"{label} line {n}: not a JSON record ({exc}); the file was altered or corrupted"
            return report
        if not isinstance(record, dict):
            report.problem = f"{label} line {n}: not a JSON object; the file was altered or corrupted"
            return report
        if record.get("seq") != n - 1:
            report.problem = (f"{label} line {n}: seq is {record.get('seq')!r}, expected {n - 1}: a record was "
                              "removed, inserted or reordered")
            return report
        if record.get("prev") != report.head:
            report.problem = (f"{label} line 1: prev is not the chain start: the line was altered" if n == 1 else
                              f"{label} line {n}: its prev hash does not match line {n - 1}: line {n - 1} (or this "
                              "line's prev) was altered")
            return report
        report.records.append(record)
        report.head = line_hash(line)
    if tail:
        report.truncated = (f"{label}: the last line ({len(tail)} bytes after record {len(complete)}) is cut short: "
                            "the writer stopped mid-record")
    return report

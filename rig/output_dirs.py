"""New output directories that never overwrite an earlier run: ``<root>/<prefix>-<UTC stamp>[-n]``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def new_output_dir(out_root: Path, prefix: str, stamp: str | None = None) -> Path:
    """Create and return ``<out_root>/<prefix>-<UTC stamp>``, or ``...-2``, ``-3``, ... if taken."""
    out_root.mkdir(parents=True, exist_ok=True)
    base = f"{prefix}-{stamp or utc_stamp()}"
    for n in range(1, 1000):
        candidate = out_root / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{out_root}: too many directories named {base}*")

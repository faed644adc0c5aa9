"""The evidence bundle's manifest and seal.

When a run ends (however it ends, short of being killed), the run directory gets:

- ``manifest.json``: the SHA-256 and size of every other file in the bundle, the run ID, whether it
  is simulated, and the results chain's record count and head; written in one canonical form
  (``canonical_json``), so that any byte changed in it is seen even where it would still parse;
- ``manifest.sha256``: the manifest's own SHA-256, in ``sha256sum`` format (``sha256sum -c`` checks it).

A bundle without them is incomplete (its run was killed): its chained records still verify.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rig.records.chain import ChainHead
from rig.results import SIMULATED_MARK, file_sha256

MANIFEST_SCHEMA = "stimrig.manifest/1"
MANIFEST = "manifest.json"
SEAL = "manifest.sha256"
PARTIAL_PREFIX = "."  # rig.results.ResultsLog.save_file writes ".<name>.partial" then renames


def canonical_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def seal_line(manifest_sha256: str) -> bytes:
    return f"{manifest_sha256}  {MANIFEST}\n".encode("ascii")


def bundle_files(run_dir: Path) -> list[str]:
    """Every file of the bundle but the manifest and seal, as sorted POSIX paths relative to it."""
    out = []
    for path in run_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(run_dir).as_posix()
            if rel not in (MANIFEST, SEAL):
                out.append(rel)
    return sorted(out)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_manifest(run_dir: Path, *, run_id: str, simulated: bool, chain: ChainHead, status: str) -> Path:
    """Hash every file of the finished bundle into its manifest, then seal the manifest."""
    files = {rel: {"sha256": file_sha256(run_dir / rel), "bytes": (run_dir / rel).stat().st_size}
             for rel in bundle_files(run_dir)}
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "run_id": run_id,
        "simulated": simulated,
        "status": status,
        "results_chain": {"file": "results.jsonl", "records": chain.records, "head": chain.head},
        "files": files,
    }
    if simulated:
        manifest["mark"] = SIMULATED_MARK
    data = canonical_json(manifest)
    _write_durably(run_dir / MANIFEST, data)
    _write_durably(run_dir / SEAL, seal_line(hashlib.sha256(data).hexdigest()))
    return run_dir / MANIFEST

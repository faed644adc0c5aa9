"""Closing a run's evidence bundle: the derived documents (report, tables), then the manifest and seal.

Everything derived is built from the results chain, which was written as the run went; if building a
document fails, the failure is recorded and the bundle is still sealed (nothing is lost).
"""

from __future__ import annotations

import logging

from rig.config.requirements import RequirementCatalogue
from rig.records.bundle import write_manifest
from rig.results import ResultsLog

log = logging.getLogger(__name__)

STATUS_BY_EXIT = {0: "passed", 1: "failed", 2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests"}


def finalize_bundle(
    results: ResultsLog, run_id: str, *, exitstatus: int, catalogue: RequirementCatalogue | None = None
) -> str:
    """Build the documents, seal the bundle; returns the run's status."""
    status = STATUS_BY_EXIT.get(exitstatus, f"exit status {exitstatus}")
    try:
        from rig.report.bundle_documents import write_documents

        write_documents(results, catalogue)
    except Exception as exc:  # the records are already safe; say what is missing and seal what exists
        log.exception("could not build the bundle's documents")
        results.write("document_error", error=f"{type(exc).__name__}: {exc}")
    results.write("bundle_sealed", status=status)
    chain = results.chain_head
    results.close()
    write_manifest(results.directory, run_id=run_id, simulated=results.simulated, chain=chain, status=status)
    return status

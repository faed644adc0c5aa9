"""Writes the bundle's derived documents (placeholder until the report lands)."""

from __future__ import annotations

from rig.results import ResultsLog


def write_documents(results: ResultsLog) -> None:
    return None

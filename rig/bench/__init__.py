"""Assembling a bench from its fixture: simulated (virtual bench in-process) or real hardware."""

from rig.bench.session import RigBench

__all__ = ["RigBench"]

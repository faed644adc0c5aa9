"""Fixture schemas (pydantic) and their loader. Every file is validated on load."""

from rig.config.bench import BenchConfig, DutConfig, LoadConfig, ScopeConfig, SimulatorConfig
from rig.config.device import DeviceModel
from rig.config.loader import load_bench, load_device, load_program, load_programs, load_yaml_model
from rig.config.program import Program

__all__ = [
    "BenchConfig",
    "DeviceModel",
    "DutConfig",
    "LoadConfig",
    "Program",
    "ScopeConfig",
    "SimulatorConfig",
    "load_bench",
    "load_device",
    "load_program",
    "load_programs",
    "load_yaml_model",
]

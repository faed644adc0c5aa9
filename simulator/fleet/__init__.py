"""Simulated fleet: many BLE stimulators driven by one or more controllers (``stimrig fleet``, docs/fleet.md).

* ``rig.config.scenario`` - the scenario fixture; ``layout.build_fleet`` expands it (positions, paths, body flags,
  admission to controller slots: the surplus over capacity is REFUSED, not dropped silently);
* ``commands.CommandPlan`` - the command stream, every command addressed to one device;
  ``device_state.DeviceStates`` - per-device set-points, changed only by commands addressed to that device;
* two engines with the same rules (``rules``, ``windows``): ``reference.run_reference`` (simpy, one event per
  connection event per device, BleConnection + ShadowingProcess) and ``fast.run_fast`` (numpy over devices x events,
  chunked in time, the simulator.link array helpers);
* ``run.run_fleet`` runs either and returns a ``results.FleetResult``; ``metrics`` computes the fleet-level
  figures (latency percentiles vs distance and fleet size, the 99 % link-holding distance, the dropout timeline).

Every random draw comes from ``simulator.rng.SeededStreams(seed)``: the same scenario and seed give the same result.
"""

from simulator.fleet.commands import Command, CommandPlan
from simulator.fleet.device_state import AddressingError, DeviceStates
from simulator.fleet.layout import Fleet, build_fleet
from simulator.fleet.results import EngineRecord, FleetResult, Gaps
from simulator.fleet.rules import CommandStatus
from simulator.fleet.run import ENGINES, EngineName, run_fleet
from simulator.fleet.setup import RunSetup

__all__ = [
    "ENGINES",
    "AddressingError",
    "Command",
    "CommandPlan",
    "CommandStatus",
    "DeviceStates",
    "EngineName",
    "EngineRecord",
    "Fleet",
    "FleetResult",
    "Gaps",
    "RunSetup",
    "build_fleet",
    "run_fleet",
]

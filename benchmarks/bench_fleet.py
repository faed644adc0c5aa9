"""Speed of the two fleet engines, measured in the same run on the same scenarios, and the 10,000-device run.

Speed = device-seconds simulated per wall second (link time of the connected devices / wall time of
``run_fleet``: fleet layout, the engine and the per-device summary; the report is not included). The fast engine
is timed as the best of several repeats (its runs are short); the reference engine once.

To keep the whole benchmark under ~60 s on 2 cores the reference engine only gets the comparison scenarios, both
REDUCED: gym_20 shortened to 60 s (all 20 devices), and the first 500 devices of fleet_10k for 20 s. The
10,000-device scenario (fleet_10k, full length) runs with the fast engine only.
"""

from __future__ import annotations

import resource
import sys
import time

from rig.config.scenario import load_scenario, scenario_with
from simulator.fleet import FleetResult, run_fleet

FAST_REPEATS = 5


def timed(scenario: object, profiles: object, engine: str, devices: int | None = None) -> tuple[float, FleetResult]:
    t0 = time.perf_counter()
    result = run_fleet(scenario, profiles, engine=engine, devices=devices)  # type: ignore[arg-type]
    return time.perf_counter() - t0, result


def compare(label: str, scenario: object, profiles: object, devices: int | None = None) -> float:
    ref_s, ref = timed(scenario, profiles, "reference", devices)
    fast_s = min(timed(scenario, profiles, "fast", devices)[0] for _ in range(FAST_REPEATS))
    work = ref.device_seconds
    events = int(ref.record.n_events.sum())
    ratio = (work / fast_s) / (work / ref_s)
    print(f"{label}: {work:,.0f} device-seconds ({events:,} connection events)")
    print(f"  reference: {ref_s:8.3f} s wall = {work / ref_s:12,.0f} device-s per s ({ref_s / events * 1e6:.0f} us "
          f"per connection event)")
    print(f"  fast:      {fast_s:8.3f} s wall = {work / fast_s:12,.0f} device-s per s (best of {FAST_REPEATS})")
    print(f"  speed ratio fast / reference: {ratio:,.0f}x")
    return ratio


def main() -> int:
    t_start = time.perf_counter()
    gym, profiles = load_scenario("gym_20")
    big, _ = load_scenario("fleet_10k")
    print("stimrig fleet engines [SIMULATED link model]; reference runs REDUCED to keep the benchmark short")
    compare("gym_20, 20 devices, shortened to 60 s", scenario_with(gym, duration_s=60.0), profiles)
    compare("fleet_10k, first 500 devices, 20 s", scenario_with(big, duration_s=20.0), profiles, devices=500)

    wall_s, result = timed(big, profiles, "fast")
    peak_MB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    refused = int((~result.connected).sum())
    print(f"fleet_10k (fast engine): {result.n_devices:,} devices ({refused} refused), {big.duration_s:g} s simulated, "
          f"{int(result.record.n_events.sum()):,} connection events: {wall_s:.2f} s wall "
          f"({result.device_seconds / wall_s:,.0f} device-s per s); peak RSS of this process {peak_MB:.0f} MB")
    print(f"benchmark total {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

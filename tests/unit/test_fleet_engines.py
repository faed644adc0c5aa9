"""The two fleet engines: each deterministic per seed, and statistically the same on the same scenario.

The reference engine (simpy, BleConnection per device) is the slow, obviously-right one; the fast engine (numpy)
must agree with it in distribution:

* means of PER, RSSI, dropouts, cutoffs, time disconnected, delivered share and latency percentiles over several
  seeds, within a few standard errors (``compare``);
* the DISTRIBUTIONS of dropout durations, walk-away cutoff latency and per-device dropout counts: two-sample
  Kolmogorov-Smirnov and Anderson-Darling tests at a stated significance level, with the test's power shown on
  deliberately different engine settings (``test_engines_give_equivalent_distributions``, ``..._has_power``);
* the performance work on both engines changed no number: the scalar fast paths of the link model against its
  array forms, and the fast engine's run-based pass 2 against the simulator.link helpers, exactly.

The default run of this file takes ~20 s (the distribution tests ~11 s of it); the slow run repeats the comparisons
with more seeds and on the shipped scenarios.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass, fields
from typing import Any

import numpy as np
import pytest
from scipy.stats import anderson_ksamp, ks_2samp

from rig.config.link import BleConnectionParams, LinkProfiles, load_link_profiles
from rig.config.scenario import Scenario, load_scenario, scenario_with
from rig.radio.path_loss import mean_path_loss_dB
from simulator.fleet import ENGINES, CommandStatus, EngineName, FleetResult, run_fleet
from simulator.fleet.fast import _block_record
from simulator.fleet.reference import _mean_path_loss_dB
from simulator.fleet.rules import NEVER, expiry_events, first_event_index, percentile
from simulator.link import (
    BleConnection,
    Delivery,
    EventOutcome,
    LinkBudget,
    LinkModel,
    bit_error_rate,
    command_latency_s,
    link_dropouts,
    lost_mask,
    packet_error_rate,
)
from simulator.link.burst import _check_fraction
from simulator.link.connection import _attempted
from simulator.link.timeline import supervision_expired

Z_LIMIT = 4.0


@pytest.fixture(scope="module")
def profiles() -> LinkProfiles:
    return load_link_profiles()


def walkers(n: int = 10, duration_s: float = 20.0, environment: str = "office") -> Scenario:
    """Patients walking a corridor to 78 m and back: every link goes through good, marginal and lost."""
    return Scenario.model_validate({
        "schema": "stimrig.scenario/1", "name": "walkers", "seed": 7, "duration_s": duration_s,
        "link": {"environment": environment}, "room": {"width_m": 80, "depth_m": 2},
        "connection": {"interval_s": 0.03, "supervision_timeout_s": 0.5, "event_duration_s": 0.00125},
        "traffic": {"command_period_s": 0.25}, "dropout_threshold_s": 0.15,
        "controllers": [{"id": "c", "position_m": [0.5, 1.0]}],
        "patients": [{"id": f"w{i}", "path": {"waypoints_m": [[2 + 0.5 * i, 1.0], [78, 1.0]],
                                              "speed_m_s": 2.0 + 0.1 * i, "repeat": "bounce"}} for i in range(n)]})


def stats(r: FleetResult) -> dict[str, float]:
    c = r.connected
    status = r.record.command_status
    latency = r.record.command_latency_s[status == CommandStatus.DELIVERED]
    sent = np.sum(status != CommandStatus.NOT_SENT)
    return {
        "per": float(np.mean(r.per[c])),
        "rssi_dBm": float(np.mean(r.mean_rssi_dBm[c])),
        "dropouts": float(np.mean(r.dropouts[c])),
        "cutoffs": float(np.mean(r.cutoffs[c])),
        "disconnected_s": float(np.mean(r.time_disconnected_s[c])),
        "delivered": float(latency.size / sent),
        "p50_s": percentile(latency, 50),
        "p90_s": percentile(latency, 90),
        "p99_s": percentile(latency, 99),
        "held": float(r.record.held_time_s.sum() / r.record.hold_time_s.sum()),
    }


def compare(scenario: Scenario, profiles: LinkProfiles, fast_seeds: int, reference_seeds: int,
            z_limit: float = Z_LIMIT) -> dict[str, tuple[float, float, float]]:
    runs: dict[str, list[dict[str, float]]] = {}
    for engine, n in (("fast", fast_seeds), ("reference", reference_seeds)):
        runs[engine] = [stats(run_fleet(scenario, profiles, engine=engine, seed=100 + s))  # type: ignore[arg-type]
                        for s in range(n)]
    table = {}
    for key in runs["fast"][0]:
        f = np.array([r[key] for r in runs["fast"]])
        g = np.array([r[key] for r in runs["reference"]])
        se = math.sqrt(f.var(ddof=1) / f.size + g.var(ddof=1) / g.size)
        diff = float(f.mean() - g.mean())
        z = diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
        table[key] = (float(f.mean()), float(g.mean()), z)
    bad = {k: v for k, v in table.items() if not abs(v[2]) <= z_limit}
    assert not bad, f"fast vs reference (mean fast, mean reference, z) beyond {z_limit} standard errors: {bad}"
    return table


def test_engines_agree_statistically_on_walkers(profiles: LinkProfiles) -> None:
    table = compare(walkers(), profiles, fast_seeds=16, reference_seeds=3)
    # the scenario is harsh enough to exercise every rule
    assert table["cutoffs"][1] > 0.3 and table["dropouts"][1] > table["cutoffs"][1] and table["delivered"][1] < 0.99


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gym_20", "crowded_clinic", "walk_away"])
def test_engines_agree_statistically_on_shipped_scenarios(profiles: LinkProfiles, name: str) -> None:
    sc, _ = load_scenario(name)
    compare(scenario_with(sc, duration_s=min(sc.duration_s, 60.0)), profiles, fast_seeds=30, reference_seeds=10)


@pytest.mark.slow
def test_engines_agree_statistically_on_many_walkers(profiles: LinkProfiles) -> None:
    compare(walkers(20, 40.0, "cluttered_clinic"), profiles, fast_seeds=40, reference_seeds=10)


def _same(a: FleetResult, b: FleetResult) -> bool:
    for f in fields(a.record):
        x, y = getattr(a.record, f.name), getattr(b.record, f.name)
        if f.name == "info":
            continue
        if f.name in ("dropouts", "cutoffs"):
            if not all(np.array_equal(getattr(x, k), getattr(y, k), equal_nan=True) for k in ("device", "start_s",
                                                                                                  "end_s")):
                return False
        elif f.name == "states":
            if not np.array_equal(x.setpoints_mA, y.setpoints_mA) or not np.array_equal(x.applied, y.applied):
                return False
        elif isinstance(x, np.ndarray):
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize(("engine", "scenario"), [("fast", "gym_20"), ("reference", "walkers")])
def test_each_engine_is_deterministic_per_seed(profiles: LinkProfiles, engine: EngineName, scenario: str) -> None:
    sc = scenario_with(load_scenario("gym_20")[0], duration_s=30.0) if scenario == "gym_20" else walkers(4, 6.0)
    a = run_fleet(sc, profiles, engine=engine, seed=11)
    b = run_fleet(sc, profiles, engine=engine, seed=11, progress=lambda fraction: None)
    c = run_fleet(sc, profiles, engine=engine, seed=12)
    assert _same(a, b)
    assert not _same(a, c)
    assert a.seed == 11 and c.seed == 12


def test_without_a_seed_the_scenario_seed_is_used_and_recorded(profiles: LinkProfiles) -> None:
    sc = walkers(2, 3.0)
    r = run_fleet(sc, profiles)
    assert r.seed == sc.seed
    assert _same(r, run_fleet(sc, profiles, seed=sc.seed))


def test_both_engines_share_fleet_plan_and_admission(profiles: LinkProfiles) -> None:
    sc = scenario_with(load_scenario("crowded_clinic")[0], duration_s=5.0)
    fast = run_fleet(sc, profiles, engine="fast")
    ref = run_fleet(sc, profiles, engine="reference")
    assert np.array_equal(fast.fleet.controller_of, ref.fleet.controller_of)
    assert np.array_equal(fast.plan.amplitude_mA, ref.plan.amplitude_mA)
    not_sent = fast.record.command_status == CommandStatus.NOT_SENT
    assert np.array_equal(not_sent, ref.record.command_status == CommandStatus.NOT_SENT)
    assert np.array_equal(not_sent, ~fast.connected[fast.plan.target])
    for r in (fast, ref):
        assert np.all(np.isnan(r.per[~r.connected])) and np.all(r.commands_delivered[~r.connected] == 0)
        assert np.all(r.time_disconnected_s[~r.connected] == sc.duration_s)


def test_fast_engine_memory_is_bounded_by_chunking(profiles: LinkProfiles) -> None:
    """A tiny element budget forces many chunks and blocks; the result stays statistically the same."""
    sc = walkers(10, 20.0)
    small: list[dict[str, Any]] = []
    normal: list[dict[str, Any]] = []
    for s in range(8):
        r = run_fleet(sc, profiles, seed=200 + s, max_elements=200)
        assert set(r.record.info["chunk_events"].values()) == {16}  # 200 // 10 links = 20 -> 16 (whole bytes)
        small.append(stats(r))
        normal.append(stats(run_fleet(sc, profiles, seed=300 + s)))
    for key in ("per", "dropouts", "cutoffs", "delivered", "held"):
        a, b = np.array([x[key] for x in small]), np.array([x[key] for x in normal])
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size) or 1e-12
        assert abs(a.mean() - b.mean()) / se < Z_LIMIT, key


def test_records_are_consistent(profiles: LinkProfiles) -> None:
    r = run_fleet(walkers(6, 15.0), profiles, seed=3)
    c = r.connected
    assert np.all(r.cutoffs <= r.dropouts)  # a cutoff is a dropout that reached the supervision timeout
    assert np.all(r.stimulation_stopped_s + 1e-9 >= r.time_disconnected_s)  # output stays off until a command
    assert np.all(r.dropout_time_s + 1e-9 >= 0) and np.all(r.time_disconnected_s <= r.record_end_s)
    sent = r.commands_delivered + r.commands_lost + r.commands_pending_at_end
    assert np.array_equal(sent, r.commands_sent)
    assert np.all(r.latency_p50_s[c] <= r.latency_p99_s[c]) and np.all(r.latency_p99_s[c] <= r.latency_max_s[c])
    for i in np.flatnonzero(c)[:3]:
        mine = (r.plan.target == i) & (r.record.command_status == CommandStatus.DELIVERED)
        assert r.latency_p99_s[i] == percentile(r.record.command_latency_s[mine], 99)


@pytest.mark.slow
def test_fleet_10k_runs_with_the_fast_engine(profiles: LinkProfiles) -> None:
    sc, _ = load_scenario("fleet_10k")
    r = run_fleet(sc, profiles, engine="fast")
    assert r.n_devices == 10_000
    assert r.fleet.refused_over_capacity.sum() > 0
    assert r.connected.sum() + (~r.connected).sum() == 10_000 and r.connected.sum() <= r.fleet.controller_capacity.sum()
    assert np.array_equal(r.record.command_status == CommandStatus.NOT_SENT, ~r.connected[r.plan.target])
    assert np.all(r.record.n_events[r.connected] == round(sc.duration_s / sc.connection.listen_interval_s))


# ---- distributions: two-sample tests with a stated level and shown power ----------------------------------------

ALPHA = 0.01
"""Family-wise significance level of each scenario's distribution test (Bonferroni over the tests it makes)."""

N_PERMUTATIONS = 1999
"""Label exchanges of the cluster-permutation KS test: p-values resolve down to 1 / 2000 = 0.0005."""

SEEDS = 10
"""Seeds per engine in the default run (the same seeds for both: the same fleets and command plans)."""

MIN_SAMPLES = {"dropout duration": 400, "walk-away cutoff latency": 120, "dropouts per device": 150}
"""Smallest pooled sample per engine the test accepts, so that it has power (see ..._has_power)."""

Metric = Callable[[FleetResult, LinkProfiles], tuple[np.ndarray, np.ndarray]]


def walk_away_fleet(n: int = 16, duration_s: float = 30.0, supervision_timeout_s: float = 1.0,
                    tx_power_dBm: float | None = None) -> Scenario:
    """``walk_away`` for a fleet: n patients walk a corridor away from the nurse station and back (bounce).

    Same link as walk_away.yaml (strzoda_indoor, 30 ms interval, 1 s supervision timeout, 250 ms dropout
    threshold). They start 12-23 m out (mean margin 10 to 4 dB: good), pass the 0 dB mean margin at ~34 m
    (marginal) and turn at 70 m (-7 dB: lost); the faster ones come back into range before the end.
    """
    link: dict[str, Any] = {"environment": "strzoda_indoor"}
    if tx_power_dBm is not None:
        link["tx_power_dBm"] = tx_power_dBm
    return Scenario.model_validate({
        "schema": "stimrig.scenario/1", "name": "walk_away_fleet", "seed": 11, "duration_s": duration_s,
        "link": link, "room": {"width_m": 100, "depth_m": 3},
        "connection": {"interval_s": 0.03, "supervision_timeout_s": supervision_timeout_s,
                       "event_duration_s": 0.00125},
        "traffic": {"command_period_s": 0.5}, "dropout_threshold_s": 0.25,
        "controllers": [{"id": "nurse-station", "position_m": [0.5, 1.5]}],
        "patients": [{"id": f"walker-{i:02d}", "body_in_path": False,
                      "path": {"waypoints_m": [[12 + 0.75 * i, 1.5], [70, 1.5]], "speed_m_s": 1.5 + 0.05 * i,
                               "repeat": "bounce"}} for i in range(n)]})


def dropout_durations(r: FleetResult, profiles: LinkProfiles) -> tuple[np.ndarray, np.ndarray]:
    """(a) Per dropout that ended within the record: from when the gap reached the dropout threshold (last success
    + threshold, ``Gaps.start_s``) to the successful event that ended it. A dropout still open at the record end is
    censored by it and left out (the same rule for both engines)."""
    g = r.record.dropouts
    closed = np.isfinite(g.end_s)
    return g.end_s[closed] - g.start_s[closed], g.device[closed]


def dropout_counts(r: FleetResult, profiles: LinkProfiles) -> tuple[np.ndarray, np.ndarray]:
    """(c) Per connected device: its number of dropouts in the record."""
    dev = np.flatnonzero(r.connected)
    return r.dropouts[dev].astype(np.float64), dev


def walk_away_cutoff_latency(r: FleetResult, profiles: LinkProfiles) -> tuple[np.ndarray, np.ndarray]:
    """(b) Walk-away cutoff latency, as in tests/certification/test_walk_away.py: from the moment a walking patient
    steps out of range to the link-loss cutoff.

    "Out of range" is the connection event at which the MEAN margin (log-distance path loss at its position +
    body/on-body loss: deterministic, the same for both engines) first falls below 0 dB on a walk away; the
    cutoff is the one in force then (started earlier in the marginal zone: a negative latency) or the first one
    after it, before the mean margin is back above 0 dB. None before that: +inf (the link held out of range).

    Measured from the last successful exchange instead, a cutoff's latency is the supervision timeout exactly in
    both engines (a point mass, no distribution to test): ``test_cutoffs_fire_one_supervision_timeout_after_...``.
    """
    sc, fleet = r.scenario, r.fleet
    model = LinkModel.from_profiles(profiles, sc.link.environment, sc.link.phy, sc.link.tx_power_dBm)
    extra = profiles.body.on_body_loss_dB if sc.link.on_body else 0.0
    values: list[float] = []
    devices: list[int] = []
    for d in np.flatnonzero(fleet.connected & fleet.moving):
        t = fleet.anchor_s[d] + np.arange(r.record.n_events[d]) * r.record.spacing_s[d]
        margin = model.margin_dB(fleet.distance_m([d], t)[0], body_in_path=bool(fleet.body_in_path[d]),
                                 extra_loss_dB=extra)
        above = margin >= 0.0
        leaves = np.flatnonzero(above[:-1] & ~above[1:]) + 1
        returns = np.flatnonzero(~above[:-1] & above[1:]) + 1
        mine = r.record.cutoffs.device == d
        start = r.record.cutoffs.start_s[mine]
        end = np.nan_to_num(r.record.cutoffs.end_s[mine], nan=np.inf)
        for k in leaves:
            back = returns[returns > k]
            until = t[back[0]] if back.size else np.inf
            hit = (start < until) & (end > t[k])
            values.append(float(start[hit].min() - t[k]) if hit.any() else math.inf)
            devices.append(int(d))
    return np.array(values, dtype=np.float64), np.array(devices, dtype=np.int64)


METRICS: dict[str, Metric] = {
    "dropout duration": dropout_durations,
    "walk-away cutoff latency": walk_away_cutoff_latency,
    "dropouts per device": dropout_counts,
}


def pooled(results: list[FleetResult], metric: Metric, profiles: LinkProfiles) -> tuple[np.ndarray, np.ndarray]:
    """(values, cluster) over the runs; cluster = (run, device): the unit whose observations may depend on each
    other (one device's dropouts share its shadowing, margin and burst chain), independent of every other unit."""
    values, clusters = [], []
    for i, r in enumerate(results):
        v, dev = metric(r, profiles)
        values.append(v)
        clusters.append(i * r.n_devices + dev)
    return np.concatenate(values), np.concatenate(clusters)


def cluster_permutation_ks(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                           n_permutations: int = N_PERMUTATIONS, seed: int = 2026) -> tuple[float, float]:
    """(D, p): the two-sample KS statistic (``scipy.stats.ks_2samp``) and its p-value under H0 by exchanging the
    engine labels of whole clusters (each (run, device) cluster flips with probability 1/2).

    Both engines ran the same seeds, so each (seed, device) has the same fleet, path and commands in both; under
    H0 its fast and reference outcomes are exchangeable, which makes this p-value exact whatever the dependence
    inside a cluster. (ks_2samp's own p-value assumes independent observations; pooled dropouts are not, and it
    is far too small here: 1e-4 where the exact one is 0.2 for the same data.)
    """
    values = np.concatenate([a[0], b[0]])
    label = np.concatenate([np.zeros(a[0].size, dtype=bool), np.ones(b[0].size, dtype=bool)])
    _, cluster = np.unique(np.concatenate([a[1], b[1]]), return_inverse=True)
    order = np.argsort(values, kind="stable")
    values, label, cluster = values[order], label[order], cluster[order]
    ends = np.flatnonzero(np.append(values[1:] != values[:-1], True))  # last of each run of equal values

    def statistic(labels: np.ndarray) -> np.ndarray:  # (n_perm, n) labels -> (n_perm,) max |ECDF_a - ECDF_b|
        n_b = labels.sum(axis=1, keepdims=True)
        n_a = labels.shape[1] - n_b
        c_b = np.cumsum(labels, axis=1)[:, ends]
        c_a = (ends + 1)[None, :] - c_b
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(np.abs(c_a / n_a - c_b / n_b).max(axis=1), nan=np.inf)

    d = float(ks_2samp(a[0], b[0]).statistic)
    assert math.isclose(float(statistic(label[None, :])[0]), d, abs_tol=1e-12), "KS statistic off scipy's"
    rng = np.random.default_rng(seed)
    exceed = 0
    for done in range(0, n_permutations, 250):
        flips = rng.random((min(250, n_permutations - done), int(cluster.max()) + 1)) < 0.5
        exceed += int(np.sum(statistic(label[None, :] ^ flips[:, cluster]) >= d - 1e-12))
    return d, (1 + exceed) / (1 + n_permutations)


@dataclass(frozen=True)
class Verdict:
    metric: str
    n: tuple[int, int]  # pooled sample sizes (fast, reference)
    statistic: float
    p: float
    test: str
    level: float  # per-test level: ALPHA / tests in the family (Bonferroni)

    @property
    def rejected(self) -> bool:
        return self.p < self.level

    def __str__(self) -> str:
        return (f"{self.metric:26s} {self.test:28s} n = {self.n[0]:5d} / {self.n[1]:5d}  stat = {self.statistic:7.4f}"
                f"  p = {self.p:.4f}  {'REJECT' if self.rejected else 'ok'} at {self.level:.4f}")


def distribution_tests(fast: list[FleetResult], reference: list[FleetResult], metrics: list[str],
                       profiles: LinkProfiles) -> list[Verdict]:
    """The family of tests of one scenario: KS (cluster-permutation p) per metric, plus Anderson-Darling k-sample
    (midrank, for the ties of counts) on the dropouts per device, whose observations are independent units."""
    n_tests = len(metrics) + ("dropouts per device" in metrics)
    level = ALPHA / n_tests
    out = []
    for name in metrics:
        a, b = pooled(fast, METRICS[name], profiles), pooled(reference, METRICS[name], profiles)
        d, p = cluster_permutation_ks(a, b)
        out.append(Verdict(name, (a[0].size, b[0].size), d, p, "KS, cluster permutation", level))
        if name == "dropouts per device":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy warns when it caps the p-value to [0.001, 0.25]
                ad = anderson_ksamp([a[0], b[0]], variant="midrank")
            out.append(Verdict(name, (a[0].size, b[0].size), float(ad.statistic), float(ad.pvalue),
                               "Anderson-Darling k-sample", level))
    return out


def _with_burst(profiles: LinkProfiles, environment: str, **change: float) -> LinkProfiles:
    env = profiles.environment(environment)
    envs = dict(profiles.environments)
    envs[environment] = env.model_copy(update={"gilbert_elliott": env.gilbert_elliott.model_copy(update=change)})
    return profiles.model_copy(update={"environments": envs})


CASES: dict[str, tuple[Callable[[], Scenario], list[str]]] = {
    "walk_away_fleet": (walk_away_fleet, ["dropout duration", "walk-away cutoff latency", "dropouts per device"]),
    "gym_20": (lambda: scenario_with(load_scenario("gym_20")[0], duration_s=60.0),
               ["dropout duration", "dropouts per device"]),  # nobody walks out of range: no walk-away latency
}

VARIANTS: dict[str, tuple[str, Callable[[Scenario, LinkProfiles], tuple[Scenario, LinkProfiles]]]] = {
    "supervision timeout 1.0 -> 1.5 s": (
        "walk_away_fleet", lambda sc, pr: (walk_away_fleet(supervision_timeout_s=1.5), pr)),
    "2 dB less margin (TX 0 -> -2 dBm)": (
        "walk_away_fleet", lambda sc, pr: (walk_away_fleet(tx_power_dBm=-2.0), pr)),
    "bursts 10 % longer (r 0.30 -> 0.27)": (
        "gym_20", lambda sc, pr: (sc, _with_burst(pr, "gym", r_bad_to_good=0.27))),
}


@pytest.fixture(scope="module")
def runs(profiles: LinkProfiles) -> Callable[..., list[FleetResult]]:
    """``runs(case, engine, seeds, variant=None)``: the runs of a case, computed once per module."""
    cache: dict[tuple[str, str, int, str | None], list[FleetResult]] = {}

    def get(case: str, engine: EngineName, seeds: int, variant: str | None = None) -> list[FleetResult]:
        key = (case, engine, seeds, variant)
        if key not in cache:
            sc, pr = CASES[case][0](), profiles
            if variant is not None:
                sc, pr = VARIANTS[variant][1](sc, pr)
            cache[key] = [run_fleet(sc, pr, engine=engine, seed=100 + s) for s in range(seeds)]
        return cache[key]

    return get


def _family(runs: Callable[..., list[FleetResult]], profiles: LinkProfiles, case: str, seeds: int,
            variant: str | None = None) -> list[Verdict]:
    return distribution_tests(runs(case, "fast", seeds, variant), runs(case, "reference", seeds), CASES[case][1],
                              profiles)


def _check_equivalent(verdicts: list[Verdict]) -> None:
    table = "\n".join(str(v) for v in verdicts)
    print(table)
    for v in verdicts:
        assert min(v.n) >= MIN_SAMPLES[v.metric], f"too few samples for the test to have power:\n{table}"
    assert not any(v.rejected for v in verdicts), f"fast and reference distributions differ:\n{table}"


@pytest.mark.parametrize("case", list(CASES))
def test_engines_give_equivalent_distributions(runs: Callable[..., list[FleetResult]], profiles: LinkProfiles,
                                               case: str) -> None:
    """A proper statistical test that the fast and reference engines give the same DISTRIBUTIONS of (a) dropout
    durations, (b) walk-away cutoff latency and (c) dropouts per device (definitions: ``dropout_durations``,
    ``walk_away_cutoff_latency``, ``dropout_counts``), on a walk-away scenario (links good -> marginal -> lost) and
    on gym_20 (60 s).

    Data: both engines run the same SEEDS seeds (the same fleets, paths and command plans); each metric is pooled
    over the runs per engine; minimum pooled sizes are asserted (MIN_SAMPLES).

    Hypotheses, per metric: H0 the two engines' outcomes have the same distribution; H1 they differ (two-sided, any
    difference in distribution).

    Test: two-sample Kolmogorov-Smirnov (the ``scipy.stats.ks_2samp`` statistic: distribution-free, sensitive to
    any difference in location, spread or shape) with its p-value from CLUSTER PERMUTATION (``N_PERMUTATIONS``
    random exchanges of the engine labels of whole (seed, device) units). That p-value is exact under H0 whatever
    the dependence inside a unit; ks_2samp's own p-value is not appropriate here, because pooled dropouts of one
    device are not independent (they share its shadowing, margin and burst chain) and it comes out far too small.
    For the dropouts per device (independent units, discrete with many ties) also the Anderson-Darling k-sample
    test (``scipy.stats.anderson_ksamp``, midrank variant for ties), which weighs the tails more.

    Level: ALPHA = 0.01 family-wise per scenario, Bonferroni over its tests (each at 0.01 / number of tests).
    Equivalence is concluded from non-rejection together with the power shown, with the same data sizes, by
    ``test_the_distribution_test_has_power`` (this is not a TOST equivalence test).
    """
    _check_equivalent(_family(runs, profiles, case, SEEDS))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_distribution_test_has_power(runs: Callable[..., list[FleetResult]], profiles: LinkProfiles,
                                         variant: str) -> None:
    """The same test, with the same seeds and sizes, REJECTS a fast engine run with a deliberately different
    setting against the unchanged reference engine: a longer supervision timeout (cutoffs come later), 2 dB less
    margin (a PER offset) on the walk-away scenario, and 10 % longer Gilbert-Elliott bursts on gym_20."""
    case = VARIANTS[variant][0]
    verdicts = _family(runs, profiles, case, SEEDS, variant)
    table = "\n".join(str(v) for v in verdicts)
    print(table)
    assert any(v.rejected for v in verdicts), f"the test did not detect {variant}:\n{table}"


def test_cutoffs_fire_one_supervision_timeout_after_the_last_success(runs: Callable[..., list[FleetResult]]) -> None:
    """Cutoff latency from the last successful exchange is the supervision timeout EXACTLY in both engines: every
    cutoff pairs with the dropout of the same gap (same device and end), which began at last success + threshold."""
    checked = 0
    for engine in ENGINES:
        for r in runs("walk_away_fleet", engine, SEEDS):
            drops, cuts = r.record.dropouts, r.record.cutoffs
            began = {(int(dv), float(e)): float(s) for dv, s, e in zip(drops.device, drops.start_s,
                                                                       np.nan_to_num(drops.end_s, nan=np.inf),
                                                                       strict=True)}
            last_success = np.array([began[(int(dv), float(e))] for dv, e in
                                     zip(cuts.device, np.nan_to_num(cuts.end_s, nan=np.inf), strict=True)])
            last_success -= r.scenario.dropout_threshold_s
            np.testing.assert_allclose(cuts.start_s - last_success, r.scenario.connection.supervision_timeout_s,
                                       rtol=0, atol=1e-9)
            checked += len(cuts)
    assert checked > 500


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_engines_give_equivalent_distributions_with_more_seeds(runs: Callable[..., list[FleetResult]],
                                                               profiles: LinkProfiles, case: str) -> None:
    """``test_engines_give_equivalent_distributions`` with 30 seeds per engine."""
    _check_equivalent(_family(runs, profiles, case, 30))


# ---- the performance paths give the same numbers ------------------------------------------------------------------


def test_scalar_per_and_ber_are_the_array_path_bit_for_bit() -> None:
    """The per-event engine's scalar path of packet_error_rate / bit_error_rate (numpy ufuncs on floats, memoised)
    gives exactly the array path's numbers, also at the clamp, at +-inf and for NaN."""
    rng = np.random.default_rng(3)
    edges = [math.nan, math.inf, -math.inf, 30.0, math.nextafter(30.0, 31.0), 29.999999, 0.0, -0.0, 1e-300, -1e3, 1e3]
    margins = np.concatenate([rng.uniform(-60.0, 60.0, 20_000), edges])
    for payload in (0, 1, 27, 37, 251):
        array = packet_error_rate(margins, payload)
        for _ in range(2):  # computed, then memoised
            scalar = np.array([packet_error_rate(float(m), payload) for m in margins])
            np.testing.assert_array_equal(scalar, array)
    np.testing.assert_array_equal([bit_error_rate(float(m)) for m in margins], bit_error_rate(margins))
    assert type(packet_error_rate(3.0, 27)) is float and type(bit_error_rate(3.0)) is float
    with pytest.raises(ValueError):
        packet_error_rate(3.0, -1)


def test_scalar_fraction_check_is_the_array_check() -> None:
    for v in (0.0, -0.0, 0.5, 1.0, -1e-300, math.nextafter(1.0, 2.0), math.nan, math.inf, -math.inf):
        outcomes = []
        for value in (v, np.array([v])):
            try:
                _check_fraction("x", value)
                outcomes.append(True)
            except ValueError:
                outcomes.append(False)
        assert outcomes[0] == outcomes[1], v


def test_connection_scalar_margin_and_supervision_are_the_array_forms(profiles: LinkProfiles) -> None:
    """BleConnection.event's scalar margin is LinkBudget.margin_dB, and it loses the link at exactly the event
    where simulator.link.timeline.supervision_expired first holds (also where timeout = k x spacing exactly)."""
    model = LinkModel.from_profiles(profiles, "gym")
    rng = np.random.default_rng(5)
    conn = model.connection(rng)
    for loss in rng.uniform(40.0, 120.0, 3000):
        if conn.lost:
            conn.reconnect(conn.next_event_s)
        out = conn.event(float(loss))
        if out.attempted:
            assert out.margin_dB == model.budget.margin_dB(float(loss))
    for interval_s, latency, timeout_s in ((0.025, 0, 1.0), (0.03, 0, 0.12), (0.0125, 3, 0.2), (0.03, 0, 0.5),
                                           (0.0075, 0, 0.1), (0.05, 1, 1.0)):
        params = BleConnectionParams(interval_s=interval_s, peripheral_latency=latency,
                                     supervision_timeout_s=timeout_s)
        c = BleConnection(params, np.random.default_rng(0), LinkBudget(0.0, -96.0))
        k = 0
        while not c.event(300.0).lost:
            k += 1
        spacing = params.listen_interval_s
        assert bool(supervision_expired(k, spacing, timeout_s)) and not supervision_expired(k - 1, spacing, timeout_s)
        assert k == expiry_events(spacing, timeout_s)


def test_event_outcome_fast_construction_is_the_dataclass() -> None:
    d = (Delivery(3, 0.1, 0.12, 1),)
    fast = _attempted(7, 0.21, True, 3.5, False, d)
    slow = EventOutcome(7, 0.21, attempted=True, success=True, lost=False, margin_dB=3.5, bad_state=False,
                        delivered=d)
    assert fast == slow and repr(fast) == repr(slow) and hash(fast) == hash(slow) and type(fast) is EventOutcome
    with pytest.raises(FrozenInstanceError):
        fast.success = False  # type: ignore[misc]


def test_reference_scalar_path_loss_is_the_array_form(profiles: LinkProfiles) -> None:
    d = np.concatenate([np.random.default_rng(4).uniform(0.0, 300.0, 20_000), [0.0, 0.5, 1.0, 1.0 + 1e-12, 1e4]])
    for name in profiles.environments:
        env = profiles.environment(name)
        np.testing.assert_array_equal([_mean_path_loss_dB(env, float(x)) for x in d], mean_path_loss_dB(env, d))


def _bursty(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """(n, m) outcomes with runs of failures of every length (a two-state chain with random parameters)."""
    p, r = rng.uniform(0.01, 0.5), rng.uniform(0.02, 0.9)
    ok = np.empty((n, m), dtype=bool)
    state = rng.random(n) < 0.7
    for k in range(m):
        ok[:, k] = state
        u = rng.random(n)
        state = np.where(state, u >= p, u < r)
    return ok


def test_fast_pass_2_is_the_link_helpers_exactly() -> None:
    """The fast engine's run-based pass 2 (``_block_record``) gives exactly what lost_mask, link_dropouts and
    command_latency_s give, on random bursty outcomes and the edge cases (no success, no failure, one event, a
    dropout threshold within the tolerance of one interval)."""
    rng = np.random.default_rng(17)
    spacing = 0.03
    cases = [_bursty(rng, int(rng.integers(1, 7)), int(rng.integers(1, 400))) for _ in range(80)]
    cases += [np.ones((2, 50), bool), np.zeros((2, 50), bool), np.ones((1, 1), bool), np.zeros((1, 1), bool),
              np.array([[False, True] * 20]), np.array([[True] + [False] * 40 + [True]])]
    for i, ok in enumerate(cases):
        n, m = ok.shape
        timeout = [0.09, 0.1, 0.5, 1.0][i % 4]
        threshold = min([spacing + 5e-10, 0.06, 0.15, 0.25][(i // 4) % 4], timeout)
        k = int(rng.integers(0, 12))
        rel = np.sort(rng.uniform(0.0, 1.1 * m * spacing, (n, k)), axis=1)
        rel[:, ::3] = np.round(rel[:, ::3] / spacing) * spacing  # some exactly on an event
        valid = rng.random((n, k)) < 0.9
        first = np.where(valid, first_event_index(rel, 0.0, spacing), NEVER)
        rel = np.where(valid, rel, (m + 1) * spacing)
        rec = _block_record(ok, spacing, timeout, threshold, first, rel, valid)

        lost = lost_mask(ok, spacing, timeout)
        assert np.array_equal(rec.held_events, (~lost).sum(axis=1))
        assert np.array_equal(rec.failures, m - ok.sum(axis=1))
        for limit, (rows, start, end) in ((threshold, rec.drops), (timeout, rec.cuts)):
            expected = link_dropouts(ok, spacing, limit)
            assert np.array_equal(rows, expected.device)
            assert np.array_equal(start, expected.lost_at_s)
            assert np.array_equal(end, expected.restored_at_s, equal_nan=True)
        latency = command_latency_s(ok, spacing, timeout, rel) if k else np.zeros((n, 0))
        delivered = valid & np.isfinite(latency)
        assert np.array_equal(rec.delivered, delivered)
        assert np.array_equal(rec.latency_s, np.where(delivered, latency, np.nan), equal_nan=True)
        ahead = np.array([[f < m and bool(ok[j, f:].any()) for f in first[j]] for j in range(n)], dtype=bool)
        ahead = ahead.reshape(n, k)
        pending = valid & ~delivered & ((first >= m) | (~ahead & ~lost[:, -1:]))
        assert np.array_equal(rec.pending, pending)

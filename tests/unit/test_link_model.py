"""BLE link model against the published figures (wireless.md) and against its own two forms.

Published: the Strzoda et al. (MSWiM 2022) mean RSSI series, free-space/Rappaport PL(100 m), 30.8 % PER at
sensitivity for a 37-byte payload, BLE connection-parameter ranges. Internal: Gilbert-Elliott moments
(p/(p+r), 1/r), stepwise vs vectorised forms, supervision-timeout semantics, determinism per seed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from rig.config.link import DEFAULT_LINK_FIXTURE, BleConnectionParams, LinkProfiles, PhyName, load_link_profiles
from rig.errors import FixtureError
from rig.radio import attenuation_for_distance_dB, distance_for_path_loss_m, mean_path_loss_dB
from simulator.link import (
    BleConnection,
    GilbertElliott,
    GilbertElliottChain,
    LinkBudget,
    LinkModel,
    ShadowingProcess,
    bit_error_rate,
    command_latency_s,
    correlated_shadowing_dB,
    link_dropouts,
    packet_error_rate,
    sample_bad_states,
    sample_event_losses,
    time_connected_s,
)

# Strzoda et al., MSWiM 2022 (wireless.md)
STRZODA_D_M = np.array([1.0, 5.0, 10.0, 16.0])
STRZODA_RSSI_DBM = np.array([-65.5, -78.4, -84.1, -90.8])
STRZODA_STD_MIN_DB, STRZODA_STD_MAX_DB = 3.5, 5.9

ALWAYS_OK_PL_DB = 40.0  # margin ~56 dB with 0 dBm / -96 dBm: PER underflows to 0
ALWAYS_LOST_PL_DB = 300.0  # BER 0.5: PER rounds to exactly 1


@pytest.fixture(scope="module")
def profiles() -> LinkProfiles:
    return load_link_profiles()


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in each row, concatenated."""
    x = np.pad(np.atleast_2d(mask).astype(np.int8), ((0, 0), (1, 1)))
    d = np.diff(x, axis=1)
    return np.nonzero(d == -1)[1] - np.nonzero(d == 1)[1]


# ---- fixture ----------------------------------------------------------------------------------------


def test_shipped_fixture_has_every_environment_and_phy(profiles: LinkProfiles) -> None:
    for name in ("open_hall", "gym", "office", "cluttered_clinic", "strzoda_indoor"):
        env = profiles.environment(name)
        assert env.pl_1m_dB == pytest.approx(40.2)
    assert profiles.environment("open_hall").path_loss_exponent == 2.0
    sens = {p: profiles.phy(p).sensitivity_dBm for p in ("LE_2M", "LE_1M", "LE_CODED_S2", "LE_CODED_S8")}
    assert list(sens.values()) == sorted(sens.values(), reverse=True)  # slower PHY, better sensitivity
    # sensitivities inside the typical-silicon ranges of wireless.md
    ranges: dict[PhyName, tuple[float, float]] = {
        "LE_1M": (-98, -94),
        "LE_2M": (-92.5, -89),
        "LE_CODED_S2": (-99, -98.5),
        "LE_CODED_S8": (-103, -101),
    }
    for phy, (lo, hi) in ranges.items():
        assert lo <= profiles.phy(phy).sensitivity_dBm <= hi
    assert 0 <= profiles.radio.tx_power_dBm <= 8
    # Gilbert-Elliott values are placeholders and say so
    for name in profiles.environments:
        assert "ASSUMED" in profiles.source_of(f"environments.{name}.gilbert_elliott.p_good_to_bad")
        assert "ASSUMED" in profiles.source_of(f"environments.{name}.decorrelation_distance_m")
    with pytest.raises(KeyError, match="known: "):
        profiles.environment("moon")


def test_interference_fractions_are_inside_the_published_13_to_40_percent(profiles: LinkProfiles) -> None:
    for env in profiles.environments.values():
        if env.interference is not None:
            assert 0.13 <= env.interference.delivery_reduction <= 0.40


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / "ble.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def _base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_LINK_FIXTURE.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("connection", "interval_s", 0.005, "connection.interval_s"),
        ("connection", "interval_s", 0.031, "1.25 ms"),
        ("connection", "peripheral_latency", 500, "connection.peripheral_latency"),
        ("connection", "supervision_timeout_s", 0.105, "10 ms"),
        ("connection", "supervision_timeout_s", 40.0, "connection.supervision_timeout_s"),
        ("radio", "tx_power_dBm", 25.0, "radio.tx_power_dBm"),
    ],
)
def test_bad_fixture_value_is_one_line_naming_file_and_field(
    tmp_path: Path, section: str, key: str, value: Any, expected: str
) -> None:
    data = _base()
    data[section][key] = value
    path = _write(tmp_path, data)
    with pytest.raises(FixtureError) as info:
        load_link_profiles(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg and expected in msg and key in msg


def test_timeout_below_twice_the_latency_window_is_refused_in_the_fixture(tmp_path: Path) -> None:
    data = _base()
    data["connection"].update(interval_s=0.1, peripheral_latency=4, supervision_timeout_s=1.0)
    path = _write(tmp_path, data)
    with pytest.raises(FixtureError) as info:
        load_link_profiles(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert "supervision_timeout_s (1 s) must exceed" in msg and "= 1 s" in msg


def test_unsourced_number_and_stale_source_are_refused(tmp_path: Path) -> None:
    data = _base()
    del data["sources"]["environments.gym.shadowing_sigma_dB"]
    path = _write(tmp_path, data)
    with pytest.raises(FixtureError, match=r"sources\['environments\.gym\.shadowing_sigma_dB'\] is missing"):
        load_link_profiles(path)
    data = _base()
    data["sources"]["environments.gym.shadowing_sigma_db"] = "typo"
    with pytest.raises(FixtureError, match="names no numeric field"):
        load_link_profiles(_write(tmp_path, data))
    data = _base()
    data["environments"]["gym"]["shadowing_sigma"] = 3.0
    with pytest.raises(FixtureError) as info:
        load_link_profiles(_write(tmp_path, data))
    assert "environments.gym.shadowing_sigma' is not a known field" in str(info.value)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="file not found"):
        load_link_profiles(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("interval_s", "latency", "timeout_s", "fragment"),
    [
        (0.00625, 0, 1.0, "greater than or equal to 0.0075"),
        (4.00125, 0, 32.0, "less than or equal to 4"),
        (0.0301, 0, 1.0, "multiple of 1.25 ms"),
        (0.03, -1, 1.0, "greater than or equal to 0"),
        (0.03, 500, 32.0, "less than or equal to 499"),
        (0.03, 0, 0.09, "greater than or equal to 0.1"),
        (0.03, 0, 0.155, "multiple of 10 ms"),
        (0.5, 0, 1.0, "must exceed (1 + peripheral_latency) x interval_s x 2"),
        (0.03, 16, 1.02, "must exceed"),
    ],
)
def test_connection_parameters_out_of_spec_are_rejected(
    interval_s: float, latency: int, timeout_s: float, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        BleConnectionParams(interval_s=interval_s, peripheral_latency=latency, supervision_timeout_s=timeout_s)
    assert fragment in str(info.value)


def test_connection_parameters_at_the_spec_edges_are_accepted() -> None:
    lo = BleConnectionParams(interval_s=0.0075, peripheral_latency=0, supervision_timeout_s=0.1)
    hi = BleConnectionParams(interval_s=4.0, peripheral_latency=2, supervision_timeout_s=32.0)
    assert lo.listen_interval_s == 0.0075
    assert hi.listen_interval_s == 12.0


# ---- path loss --------------------------------------------------------------------------------------


def test_strzoda_fixture_values_are_the_least_squares_fit_of_the_published_series(profiles: LinkProfiles) -> None:
    env = profiles.environment("strzoda_indoor")
    slope, intercept = np.polyfit(10 * np.log10(STRZODA_D_M), STRZODA_RSSI_DBM, 1)
    assert env.path_loss_exponent == pytest.approx(-slope, abs=5e-4)
    tx_assumed_dBm = 0.0
    assert env.excess_loss_dB == pytest.approx(tx_assumed_dBm - env.pl_1m_dB - intercept, abs=5e-3)
    assert STRZODA_STD_MIN_DB <= env.shadowing_sigma_dB <= STRZODA_STD_MAX_DB


def test_mean_model_reproduces_strzoda_rssi_within_the_published_spread(profiles: LinkProfiles) -> None:
    model = LinkModel.from_profiles(profiles, "strzoda_indoor", tx_power_dBm=0.0)
    rssi = model.budget.rssi_dBm(model.mean_path_loss_dB(STRZODA_D_M))
    residual = np.abs(rssi - STRZODA_RSSI_DBM)
    assert np.all(residual <= STRZODA_STD_MIN_DB), residual
    assert np.sqrt(np.mean(residual**2)) < 1.1  # RMS residual of the fit: 1.02 dB


def test_monte_carlo_rssi_matches_strzoda_mean_and_spread(profiles: LinkProfiles) -> None:
    model = LinkModel.from_profiles(profiles, "strzoda_indoor", tx_power_dBm=0.0)
    env = model.environment
    rng = np.random.default_rng(2022)
    n = 4000
    # n static devices at each distance, each with its own shadowing draw
    shadow = ShadowingProcess(
        env.shadowing_sigma_dB, env.decorrelation_distance_m, rng, shape=(n, STRZODA_D_M.size)
    ).value_dB
    rssi = model.budget.rssi_dBm(model.mean_path_loss_dB(STRZODA_D_M)[None, :], shadowing_dB=shadow)
    assert np.all(np.abs(rssi.mean(axis=0) - STRZODA_RSSI_DBM) <= STRZODA_STD_MIN_DB)
    std = rssi.std(axis=0)
    assert np.all((std >= STRZODA_STD_MIN_DB) & (std <= STRZODA_STD_MAX_DB)), std


@pytest.mark.parametrize(("n", "expected_dB"), [(2.0, 80.0), (2.5, 90.0), (3.0, 100.0)])
def test_path_loss_at_100_m_matches_the_published_figures(n: float, expected_dB: float) -> None:
    env = SimpleNamespace(pl_1m_dB=40.2, path_loss_exponent=n, excess_loss_dB=0.0)
    assert mean_path_loss_dB(env, 100.0) == pytest.approx(expected_dB, abs=0.25)


def test_fixture_environments_give_the_rappaport_figures(profiles: LinkProfiles) -> None:
    assert mean_path_loss_dB(profiles.environment("open_hall"), 100.0) == pytest.approx(80.2)
    assert mean_path_loss_dB(profiles.environment("office"), 100.0) == pytest.approx(100.2)


def test_path_loss_is_vectorised_and_clamped_below_one_metre(profiles: LinkProfiles) -> None:
    env = profiles.environment("office")
    d = np.array([[0.0, 0.5, 1.0], [2.0, 10.0, 100.0]])
    pl = mean_path_loss_dB(env, d)
    assert pl.shape == d.shape
    np.testing.assert_allclose(pl[0], 40.2)
    np.testing.assert_allclose(pl[1], 40.2 + 30 * np.log10([2.0, 10.0, 100.0]))
    assert isinstance(mean_path_loss_dB(env, 3.0), float)
    with pytest.raises(ValueError, match="distance_m must be finite and >= 0"):
        mean_path_loss_dB(env, np.array([1.0, -2.0]))
    np.testing.assert_allclose(distance_for_path_loss_m(env, mean_path_loss_dB(env, d[1])), d[1])


def test_attenuation_takes_off_the_cable_loss_and_refuses_negative(profiles: LinkProfiles) -> None:
    env = profiles.environment("open_hall")
    assert attenuation_for_distance_dB(env, 10.0, 12.5) == pytest.approx(60.2 - 12.5)
    np.testing.assert_allclose(attenuation_for_distance_dB(env, np.array([1.0, 100.0]), 10.0), [30.2, 70.2])
    with pytest.raises(ValueError, match=r"cable_loss_dB \(45 dB\) exceeds the mean path loss"):
        attenuation_for_distance_dB(env, 1.0, 45.0)


# ---- link budget and packet errors -----------------------------------------------------------------


def test_link_budget_terms_and_margin(profiles: LinkProfiles) -> None:
    budget = LinkBudget.from_profiles(profiles, "LE_CODED_S8", tx_power_dBm=8.0)
    assert budget.max_path_loss_dB == pytest.approx(110.0)  # wireless.md: ~111 dB
    assert budget.rssi_dBm(80.0, 3.0, 15.0, 2.0) == pytest.approx(8.0 - 100.0)
    assert budget.margin_dB(80.0, 3.0, 15.0, 2.0) == pytest.approx(-92.0 + 102.0)
    np.testing.assert_allclose(budget.margin_dB(np.array([100.0, 110.0])), [10.0, 0.0])
    with pytest.raises(ValueError, match=r"tx_power_dBm must be within -20\.\.20 dBm"):
        LinkBudget(tx_power_dBm=21.0, sensitivity_dBm=-96.0)


def test_per_is_30_8_percent_at_sensitivity_for_37_bytes_and_monotone() -> None:
    assert bit_error_rate(0.0) == pytest.approx(1e-3, rel=1e-12)
    assert packet_error_rate(0.0, 37) == pytest.approx(0.308, abs=5e-4)
    margins = np.linspace(-20.0, 20.0, 401)
    per = packet_error_rate(margins, 37)
    assert np.all(np.diff(per) <= 0) and np.any(np.diff(per) < 0)
    assert per[0] == pytest.approx(1.0) and per[-1] == pytest.approx(0.0, abs=1e-12)
    assert packet_error_rate(0.0, 0) < packet_error_rate(0.0, 37) < packet_error_rate(0.0, 251)


# ---- Gilbert-Elliott ----------------------------------------------------------------------------------

GE = GilbertElliott(p_good_to_bad=0.02, r_bad_to_good=0.25)


def test_vectorised_chain_has_the_gilbert_elliott_moments() -> None:
    bad = sample_bad_states(GE, np.random.default_rng(7), 100, 10_000)
    assert bad.shape == (100, 10_000)
    assert bad.mean() == pytest.approx(GE.stationary_bad, rel=0.05)
    lost = sample_event_losses(GE, np.random.default_rng(8), bad, per_good=0.0)
    assert lost.mean() == pytest.approx(GE.p_good_to_bad / (GE.p_good_to_bad + GE.r_bad_to_good), rel=0.05)
    assert _runs(bad).mean() == pytest.approx(GE.mean_burst_events, rel=0.05)
    assert _runs(~bad).mean() == pytest.approx(GE.mean_gap_events, rel=0.08)


def test_stepwise_and_vectorised_chains_agree_statistically() -> None:
    n = 60_000
    chain = GilbertElliottChain(GE, np.random.default_rng(11))
    step_bad = np.array([chain.next_state() for _ in range(n)])
    vec_bad = sample_bad_states(GE, np.random.default_rng(12), 1, n)[0]
    for states in (step_bad, vec_bad):
        assert states.mean() == pytest.approx(GE.stationary_bad, rel=0.12)
        assert _runs(states).mean() == pytest.approx(1 / GE.r_bad_to_good, rel=0.1)
    # lag-1 persistence P(B -> B) = 1 - r in both
    for states in (step_bad, vec_bad):
        assert np.mean(states[1:][states[:-1]]) == pytest.approx(1 - GE.r_bad_to_good, abs=0.03)
    # losses with Good-state PER and interference: stepwise vs vectorised
    per, q = 0.1, 0.2
    chain = GilbertElliottChain(GE, np.random.default_rng(13))
    step_lost = np.mean([chain.step(per, q) for _ in range(20_000)])
    vec = sample_bad_states(GE, np.random.default_rng(14), 20, 1000)
    vec_lost = sample_event_losses(GE, np.random.default_rng(15), vec, per, q).mean()
    s = GE.stationary_bad
    expected = 1 - (1 - (s + (1 - s) * per)) * (1 - q)
    assert step_lost == pytest.approx(expected, abs=0.015)
    assert vec_lost == pytest.approx(expected, abs=0.015)


def test_chain_continues_from_a_previous_state() -> None:
    sure = GilbertElliott(p_good_to_bad=0.0, r_bad_to_good=1.0)  # Bad -> Good at once, never back
    states = sample_bad_states(sure, np.random.default_rng(0), 3, 5, previous_bad=np.array([True, False, True]))
    assert not states.any()
    stuck = GilbertElliott(p_good_to_bad=1.0, r_bad_to_good=1.0)  # alternates every event
    states = sample_bad_states(stuck, np.random.default_rng(0), 2, 4, previous_bad=np.array([True, False]))
    assert states.tolist() == [[False, True, False, True], [True, False, True, False]]


# ---- shadowing --------------------------------------------------------------------------------------


def test_static_device_keeps_one_shadowing_draw() -> None:
    proc = ShadowingProcess(7.0, 2.0, np.random.default_rng(3))
    first = proc.value_dB
    assert all(proc.step(0.0) == first for _ in range(10))
    track = correlated_shadowing_dB(np.random.default_rng(3), 7.0, 2.0, np.zeros((5, 50)))
    assert np.all(track == track[:, :1]) and np.ptp(track[:, 0]) > 0


def test_moving_device_shadowing_is_exponentially_correlated() -> None:
    sigma, dcorr, step = 5.0, 2.0, 0.1
    track = correlated_shadowing_dB(np.random.default_rng(4), sigma, dcorr, np.full((200, 2000), step))
    assert track.std() == pytest.approx(sigma, rel=0.03)
    lag = int(dcorr / step)  # one decorrelation distance
    rho = np.mean(track[:, :-lag] * track[:, lag:]) / track.var()
    assert rho == pytest.approx(np.exp(-1), abs=0.04)
    # stepwise form: same lag correlation
    proc = ShadowingProcess(sigma, dcorr, np.random.default_rng(5), shape=(200,))
    steps = np.stack([proc.step(step) for _ in range(400)], axis=1)
    rho_step = np.mean(steps[:, :-lag] * steps[:, lag:]) / steps.var()
    assert rho_step == pytest.approx(np.exp(-1), abs=0.06)
    # a long walk (many blocks) stays finite and stationary; continuation starts from the last value
    long = correlated_shadowing_dB(np.random.default_rng(6), sigma, dcorr, np.full((2, 30_000), 0.5))
    assert np.all(np.isfinite(long)) and long.std() == pytest.approx(sigma, rel=0.1)
    nxt = correlated_shadowing_dB(np.random.default_rng(6), sigma, dcorr, np.zeros((2, 3)), initial_dB=long[:, -1])
    np.testing.assert_array_equal(nxt, np.repeat(long[:, -1:], 3, axis=1))


# ---- connection layer -----------------------------------------------------------------------------------


def _conn(interval_s: float = 0.025, timeout_s: float = 1.0, latency: int = 0, seed: int = 0) -> BleConnection:
    params = BleConnectionParams(interval_s=interval_s, peripheral_latency=latency, supervision_timeout_s=timeout_s)
    return BleConnection(params, np.random.default_rng(seed), LinkBudget(0.0, -96.0))


def test_link_is_lost_exactly_after_the_supervision_timeout_of_consecutive_failures() -> None:
    conn = _conn(interval_s=0.025, timeout_s=1.0)
    assert conn.event(ALWAYS_OK_PL_DB).success  # event 0 at t = 0
    assert conn.event(ALWAYS_OK_PL_DB).success  # event 1 at t = 0.025: the last success
    outcomes = [conn.event(ALWAYS_LOST_PL_DB) for _ in range(45)]
    attempted = [o for o in outcomes if o.attempted]
    assert all(not o.success for o in attempted)
    # failures at 0.05 .. 1.0 s (39 events) stay connected; the event at 1.025 s = 0.025 + 1.0 finds it lost
    assert len(attempted) == 39 and attempted[-1].time_s == pytest.approx(1.0)
    first_lost = outcomes[39]
    assert first_lost.lost and not first_lost.attempted and first_lost.time_s == pytest.approx(1.025)
    assert conn.lost and conn.lost_at_s == pytest.approx(0.025 + 1.0)
    # the array form finds the same dropout in the same record
    ok = np.array([True, True] + [False] * 45)
    drops = link_dropouts(ok, 0.025, 1.0)
    assert len(drops) == 1 and drops.lost_at_s[0] == pytest.approx(conn.lost_at_s)
    assert np.isnan(drops.restored_at_s[0]) and drops.duration_s[0] == pytest.approx(47 * 0.025 - 1.025)


def test_peripheral_latency_spaces_the_events_and_counts_toward_the_timeout() -> None:
    conn = _conn(interval_s=0.0125, timeout_s=0.2, latency=3)  # listens every 50 ms
    times = []
    while not conn.lost:
        times.append(conn.event(ALWAYS_LOST_PL_DB).time_s)
    np.testing.assert_allclose(np.diff(times), 0.05)
    assert conn.lost_at_s == pytest.approx(0.2) and times[-1] == pytest.approx(0.2)


def test_command_is_retried_every_event_until_acknowledged() -> None:
    conn = _conn(interval_s=0.03, timeout_s=1.0)
    conn.event(ALWAYS_OK_PL_DB)  # t = 0
    cid = conn.submit(0.01)
    assert conn.pending == 1
    assert conn.event(ALWAYS_LOST_PL_DB).delivered == ()  # t = 0.03
    assert conn.event(ALWAYS_LOST_PL_DB).delivered == ()  # t = 0.06
    out = conn.event(ALWAYS_OK_PL_DB)  # t = 0.09
    (delivery,) = out.delivered
    assert delivery.command_id == cid and delivery.attempts == 3
    assert delivery.latency_s == pytest.approx((0.03 - 0.01) + 2 * 0.03)
    assert conn.pending == 0
    lat = command_latency_s(np.array([True, False, False, True, True]), 0.03, 1.0, [0.01, 0.09, 0.1])
    np.testing.assert_allclose(lat, [[0.08, 0.0, 0.02]])
    with pytest.raises(ValueError, match="decide the connection events up to now first"):
        conn.submit(0.5)


def test_pending_command_is_flushed_when_the_link_is_lost_and_reconnect_restarts() -> None:
    conn = _conn(interval_s=0.05, timeout_s=0.5)
    cid = conn.submit(0.0)
    outcomes = []
    while not conn.lost:
        outcomes.append(conn.event(ALWAYS_LOST_PL_DB))
    assert outcomes[-1].dropped == (cid,) and conn.pending == 0
    with pytest.raises(RuntimeError, match="reconnect"):
        conn.submit(conn.next_event_s)
    conn.reconnect(1.0)
    assert not conn.lost and conn.next_event_s == pytest.approx(1.0) and conn.last_success_s == pytest.approx(1.0)
    lat = command_latency_s(np.array([False] * 12 + [True]), 0.05, 0.5, [0.0, 0.6])
    assert np.all(np.isnan(lat))  # lost before delivery / issued during the dropout


def test_array_helpers_dropouts_time_connected_and_latency() -> None:
    spacing, timeout = 0.1, 0.45  # lost at the 5th event after the last success
    ok = np.array(
        [
            [True, False, False, False, True, True, False, False, False, False, False, True],  # one dropout
            [True] * 12,  # never lost
        ]
    )
    drops = link_dropouts(ok, spacing, timeout, start_s=10.0)
    assert drops.device.tolist() == [0]
    assert drops.lost_at_s[0] == pytest.approx(10.5 + 0.45)  # 4 failures after 0.4 s: not lost; 5 after 0.5 s: lost
    assert drops.restored_at_s[0] == pytest.approx(11.1)
    np.testing.assert_allclose(time_connected_s(ok, spacing, timeout), [1.2 - (1.1 - 0.95), 1.2])
    lat = command_latency_s(ok, spacing, timeout, [0.05, 0.55])
    np.testing.assert_allclose(lat[1], [0.05, 0.05])
    assert lat[0, 0] == pytest.approx(0.35) and np.isnan(lat[0, 1])


def test_stepwise_connection_and_array_helpers_agree_on_a_random_channel(profiles: LinkProfiles) -> None:
    model = LinkModel.from_profiles(profiles, "cluttered_clinic")
    rng = np.random.default_rng(99)
    conn = model.connection(rng)
    shadow = model.shadowing(rng)
    pl = model.mean_path_loss_dB(12.0)
    ok: list[bool] = []
    while not conn.lost and len(ok) < 20_000:
        out = conn.event(pl + shadow.step(0.02) + 10.0)
        ok.append(out.success)
    assert conn.lost, "channel chosen to lose the link"
    drops = link_dropouts(np.array(ok), conn.spacing_s, conn.params.supervision_timeout_s)
    assert drops.lost_at_s[0] == pytest.approx(conn.lost_at_s)


def test_same_seed_same_outcomes(profiles: LinkProfiles) -> None:
    model = LinkModel.from_profiles(profiles, "gym")

    def run(seed: int) -> tuple[list[tuple[bool, bool]], np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        conn, shadow = model.connection(rng), model.shadowing(rng)
        pl = model.mean_path_loss_dB(30.0)
        events = [(o.success, o.bad_state) for o in (conn.event(pl + shadow.step(0.05)) for _ in range(300))]
        rng2 = np.random.default_rng(seed)
        bad = sample_bad_states(model.burst, rng2, 4, 500)
        track = correlated_shadowing_dB(rng2, 8.7, 2.0, np.full((4, 100), 0.1))
        return events, bad, track

    a, b, c = run(1), run(1), run(2)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[0] != c[0] or not np.array_equal(a[2], c[2])

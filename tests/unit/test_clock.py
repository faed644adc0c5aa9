"""The virtual bench clock (virtual and real-time modes) and the seeded random streams."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np
import pytest
import simpy

from simulator.clock import ProcessTimeout, SimClock
from simulator.rng import SeededStreams


@pytest.fixture
def clock() -> Iterator[SimClock]:
    clk = SimClock()
    yield clk
    clk.close()


@pytest.fixture
def rt_clock() -> Iterator[SimClock]:
    clk = SimClock(realtime=True)
    yield clk
    clk.close()


def sleeper(env: simpy.Environment, seconds: float, value: Any) -> Generator[simpy.Event, Any, Any]:
    yield env.timeout(seconds)
    return value


# ---- virtual mode ----------------------------------------------------------------------------------------


def test_virtual_time_does_not_advance_by_itself(clock: SimClock) -> None:
    ticks: list[float] = []

    def ticker() -> Generator[simpy.Event, Any, None]:
        while True:
            yield clock.env.timeout(0.001)
            ticks.append(clock.env.now)

    clock.env.process(ticker())
    t0 = clock.now()
    time.sleep(0.05)
    assert clock.now() == t0 == 0.0
    assert ticks == []


def test_wait_advances_exactly(clock: SimClock) -> None:
    clock.wait(0.25)
    assert clock.now() == 0.25
    t = clock.now()
    clock.wait(1.5)
    assert clock.now() == t + 1.5
    clock.wait(0.0)
    assert clock.now() == t + 1.5


def test_wait_runs_what_is_due_and_nothing_later(clock: SimClock) -> None:
    fired: list[float] = []

    def at(t: float) -> Generator[simpy.Event, Any, None]:
        yield clock.env.timeout(t)
        fired.append(t)

    for t in (0.5, 1.0, 1.5):
        clock.env.process(at(t))
    clock.wait(0.99)
    assert fired == [0.5]
    clock.wait(0.3)
    assert fired == [0.5, 1.0]
    assert clock.now() == pytest.approx(1.29)


def test_wall_time_cost_does_not_scale_with_virtual_time(clock: SimClock) -> None:
    start = time.monotonic()
    clock.wait(3600.0)
    assert clock.now() == 3600.0
    assert time.monotonic() - start < 0.5


def test_negative_wait_is_refused(clock: SimClock) -> None:
    clock.wait(1.0)
    with pytest.raises(ValueError, match="negative"):
        clock.wait(-0.1)
    assert clock.now() == 1.0


def test_advance_to_the_past_is_a_no_op(clock: SimClock) -> None:
    clock.advance_to(2.0)
    clock.advance_to(1.0)
    assert clock.now() == 2.0


def test_run_process_returns_its_value(clock: SimClock) -> None:
    assert clock.run_process(sleeper(clock.env, 0.3, "done")) == "done"
    assert clock.now() == pytest.approx(0.3)


def test_run_process_enforces_its_limit(clock: SimClock) -> None:
    with pytest.raises(ProcessTimeout, match="5"):
        clock.run_process(sleeper(clock.env, 10.0, "late"), limit_s=5.0)
    assert clock.now() == pytest.approx(5.0)  # stopped at the limit, not at the process's end


def test_run_process_default_limit_is_60s(clock: SimClock) -> None:
    assert clock.run_process(sleeper(clock.env, 59.0, 1)) == 1
    with pytest.raises(ProcessTimeout):
        clock.run_process(sleeper(clock.env, 61.0, 2))


def test_run_process_propagates_the_process_error(clock: SimClock) -> None:
    def failing() -> Generator[simpy.Event, Any, None]:
        yield clock.env.timeout(0.1)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        clock.run_process(failing())


# ---- real-time mode --------------------------------------------------------------------------------------


def test_realtime_advances_with_the_wall_clock_and_close_stops_it(rt_clock: SimClock) -> None:
    w0, v0 = time.monotonic(), rt_clock.now()
    time.sleep(0.2)
    elapsed = time.monotonic() - w0
    advanced = rt_clock.now() - v0
    assert 0.1 <= advanced <= elapsed + 0.05
    rt_clock.close()
    frozen = rt_clock.now()
    time.sleep(0.1)
    assert rt_clock.now() == frozen


def test_realtime_wait_and_run_process_take_wall_time(rt_clock: SimClock) -> None:
    w0 = time.monotonic()
    rt_clock.wait(0.1)
    assert 0.08 <= time.monotonic() - w0 <= 1.0
    w1 = time.monotonic()
    assert rt_clock.run_process(sleeper(rt_clock.env, 0.1, 7)) == 7
    assert 0.08 <= time.monotonic() - w1 <= 1.0


def test_realtime_run_process_enforces_its_limit(rt_clock: SimClock) -> None:
    w0 = time.monotonic()
    with pytest.raises(ProcessTimeout):
        rt_clock.run_process(sleeper(rt_clock.env, 5.0, None), limit_s=0.1)
    assert time.monotonic() - w0 < 1.0


# ---- seeded random streams -------------------------------------------------------------------------------


def test_same_seed_and_name_give_the_same_draws() -> None:
    a = SeededStreams(20261123)("scope.noise").normal(size=1000)
    b = SeededStreams(20261123)("scope.noise").normal(size=1000)
    assert np.array_equal(a, b)


def test_a_stream_continues_rather_than_restarting() -> None:
    s = SeededStreams(1)
    first, second = s("x").random(10), s("x").random(10)
    assert not np.array_equal(first, second)
    assert np.array_equal(np.concatenate([first, second]), SeededStreams(1)("x").random(20))


def test_different_seeds_differ() -> None:
    assert not np.array_equal(SeededStreams(1)("noise").random(100), SeededStreams(2)("noise").random(100))


def test_different_names_are_independent() -> None:
    s = SeededStreams(7)
    a, b = s("scope.noise").normal(size=20_000), s("scope.jitter").normal(size=20_000)
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
    assert s.streams == ["scope.jitter", "scope.noise"]


def test_adding_a_stream_does_not_change_an_existing_one() -> None:
    alone = SeededStreams(42)
    draws_alone = alone("scope.noise").random(100)
    crowded = SeededStreams(42)
    crowded("dut.latency").random(5)  # another stream created (and drawn from) first
    crowded("aaa").random(5)
    draws_crowded = crowded("scope.noise").random(100)
    assert np.array_equal(draws_alone, draws_crowded)

"""The simulated stimulator over a real pseudo-terminal, driven with pyserial through SerialDutLink.

Every kind of bad input gets the right ERROR reply and leaves the output (the firmware's pulse
schedule and STATUS) exactly as it was; the rig's own guards (amplitude ceiling, corrupt reply,
silent device) fail loudly, naming the port. No amplitude above the bench ceiling (110 mA) is ever
written to the device.
"""

from __future__ import annotations

import contextlib
import copy
import os
import select
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from cobs import cobs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rig.config import load_device, load_programs
from rig.config.loader import FIXTURES_DIR
from rig.dut import SerialDutLink
from rig.errors import CeilingError, DeviceRefused, DutError, ProtocolError
from rig.protocol import ErrorCode, Frame, FrameDecoder, MsgType, encode_frame, parse_payload, reply_type
from rig.protocol.framing import MAX_ENCODED_BYTES, crc16
from rig.protocol.messages import PayloadError
from simulator.clock import SimClock
from simulator.device_server import PtyDeviceServer
from simulator.stimulator.firmware import Firmware
from tests.unit.conftest import without_link_supervision

CEILING_MA = 110.0  # the bench's amplitude ceiling: nothing above it is ever sent
DEVICE_MAX_MA = 100.0  # CS-4 limits.max_amplitude_mA
REPLY_TIMEOUT_S = 2.0
RUNNING = 1  # channel running tens_hf at 25 mA in every test
IDLE = 2
WINDOW = (3.0, 2e-6, 40_000)  # t0, dt, n: 80 ms of output from t = 3 s, rendered before and after


@dataclass
class Sim:
    clock: SimClock
    firmware: Firmware
    server: PtyDeviceServer
    link: SerialDutLink


@pytest.fixture
def sim() -> Iterator[Sim]:
    device = without_link_supervision(load_device(FIXTURES_DIR / "devices" / "cs4.yaml"))
    programs = {p.id: p for p in load_programs()}
    clock = SimClock()
    firmware = Firmware(clock.env, device, programs)
    server = PtyDeviceServer(clock, firmware)
    port = server.start()
    link = SerialDutLink(port, baudrate=115200, reply_timeout_s=REPLY_TIMEOUT_S, ceiling_mA=CEILING_MA)
    try:
        link.start("tens_hf", [RUNNING], 25)
        clock.wait(3.0)  # past the 2 s ramp: steady output
        yield Sim(clock, firmware, server, link)
    finally:
        link.close()
        server.stop()
        clock.close()


def output_of(sim: Sim) -> dict[str, Any]:
    """Everything that defines the output: segments, rendered current and STATUS (minus the clock)."""
    fw = sim.firmware
    return {
        "segments": {n: copy.deepcopy(ch.schedule.segments) for n, ch in fw.channels.items()},
        "runtime": {
            n: (ch.state, ch.program.id if ch.program else None, ch.target_mA) for n, ch in fw.channels.items()
        },
        "rendered": {n: ch.schedule.render_mA(*WINDOW) for n, ch in fw.channels.items()},
    }


def status_of(sim: Sim) -> list[tuple[Any, ...]]:
    return [(s.channel, s.state, s.program, s.amplitude_mA, s.target_mA) for s in sim.link.status()]


def assert_same_output(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["segments"] == before["segments"]
    assert after["runtime"] == before["runtime"]
    for n, samples in before["rendered"].items():
        np.testing.assert_array_equal(after["rendered"][n], samples, err_msg=f"channel {n} output changed")


def with_crc(body: bytes, *, crc_xor: int = 0) -> bytes:
    return cobs.encode(body + (crc16(body) ^ crc_xor).to_bytes(2, "big")) + b"\x00"


def raw(msg_type: int, seq: int, payload: bytes, *, version: int = 1, crc_xor: int = 0) -> bytes:
    return with_crc(bytes((version, seq, msg_type)) + payload, crc_xor=crc_xor)


def req(msg_type: int, seq: int, payload: dict[str, Any]) -> bytes:
    return encode_frame(Frame(int(msg_type), seq, payload))


SA, START, STOP = MsgType.SET_AMPLITUDE, MsgType.START, MsgType.STOP
_seq_hit = bytearray(with_crc(bytes((1, 10, MsgType.STOP)) + b"{}"))
_seq_hit[2] = 77  # the seq byte (after the COBS code byte) is corrupted on the line: CRC fails

# name: (bytes written, expected error code, expected seq of the ERROR reply)
BAD_INPUTS: dict[str, tuple[bytes, ErrorCode, int]] = {
    "bad_crc": (raw(SA, 201, b'{"amplitude_mA":5,"channel":1}', crc_xor=0x0001), ErrorCode.BAD_CRC, 201),
    "bad_crc_on_stop": (raw(STOP, 30, b"{}", crc_xor=0x8000), ErrorCode.BAD_CRC, 30),
    "bad_crc_seq_byte_hit": (bytes(_seq_hit), ErrorCode.BAD_CRC, 77),
    "broken_cobs": (b"\x09\x01\x02\x00", ErrorCode.BAD_FRAME, 0),
    "too_short": (cobs.encode(b"\x01\x05\x07") + b"\x00", ErrorCode.BAD_FRAME, 0),
    "over_long": (b"\x42" * (MAX_ENCODED_BYTES + 200) + b"\x00", ErrorCode.BAD_FRAME, 0),
    "wrong_version": (raw(STOP, 202, b"{}", version=2), ErrorCode.UNSUPPORTED_VERSION, 202),
    "unknown_type": (req(0x55, 203, {}), ErrorCode.UNKNOWN_COMMAND, 203),
    "error_type_as_request": (req(MsgType.ERROR, 209, {}), ErrorCode.UNKNOWN_COMMAND, 209),
    "reply_type_as_request": (req(reply_type(MsgType.STOP), 210, {}), ErrorCode.UNKNOWN_COMMAND, 210),
    "payload_not_utf8": (raw(SA, 204, b"\xff{"), ErrorCode.BAD_PAYLOAD, 204),
    "payload_not_json": (raw(STOP, 211, b"{channels: all}"), ErrorCode.BAD_PAYLOAD, 211),
    "payload_json_array": (raw(STOP, 212, b"[1]"), ErrorCode.BAD_PAYLOAD, 212),
    "amplitude_string": (req(SA, 205, {"channel": 1, "amplitude_mA": "max"}), ErrorCode.BAD_PAYLOAD, 205),
    "amplitude_bool": (req(SA, 213, {"channel": 1, "amplitude_mA": True}), ErrorCode.BAD_PAYLOAD, 213),
    "amplitude_nan_literal": (raw(SA, 214, b'{"amplitude_mA":NaN,"channel":1}'), ErrorCode.BAD_PAYLOAD, 214),
    "channel_float": (req(SA, 215, {"channel": 1.0, "amplitude_mA": 5}), ErrorCode.BAD_PAYLOAD, 215),
    "channels_not_a_list": (req(STOP, 216, {"channels": 1}), ErrorCode.BAD_PAYLOAD, 216),
    "missing_field": (req(SA, 217, {"channel": 1}), ErrorCode.BAD_PAYLOAD, 217),
    "extra_field_set_amplitude": (req(SA, 218, {"channel": 1, "amplitude_mA": 5, "boost": True}),
                                  ErrorCode.BAD_PAYLOAD, 218),
    "extra_field_stop": (req(STOP, 219, {"channels": [1], "ramp": False}), ErrorCode.BAD_PAYLOAD, 219),
    "extra_field_start": (req(START, 220, {"program": "tens_hf", "channels": [IDLE], "amplitude_mA": 5, "x": 1}),
                          ErrorCode.BAD_PAYLOAD, 220),
    "negative_amplitude": (req(SA, 206, {"channel": 1, "amplitude_mA": -5}), ErrorCode.OUT_OF_RANGE, 206),
    "amplitude_above_device_max": (req(SA, 221, {"channel": 1, "amplitude_mA": 100.5}), ErrorCode.OUT_OF_RANGE, 221),
    "amplitude_at_ceiling": (req(SA, 222, {"channel": 1, "amplitude_mA": CEILING_MA}), ErrorCode.OUT_OF_RANGE, 222),
    "start_above_device_max": (req(START, 223, {"program": "tens_hf", "channels": [IDLE], "amplitude_mA": 105}),
                               ErrorCode.OUT_OF_RANGE, 223),
    "start_negative": (req(START, 224, {"program": "tens_hf", "channels": [IDLE], "amplitude_mA": -1}),
                       ErrorCode.OUT_OF_RANGE, 224),
    "no_such_channel": (req(SA, 207, {"channel": 99, "amplitude_mA": 5}), ErrorCode.BAD_CHANNEL, 207),
    "channel_zero": (req(SA, 225, {"channel": 0, "amplitude_mA": 5}), ErrorCode.BAD_CHANNEL, 225),
    "start_no_such_channel": (req(START, 226, {"program": "tens_hf", "channels": [5], "amplitude_mA": 5}),
                              ErrorCode.BAD_CHANNEL, 226),
    "stop_with_one_bad_channel": (req(STOP, 227, {"channels": [RUNNING, 9]}), ErrorCode.BAD_CHANNEL, 227),
    "unknown_program": (req(START, 228, {"program": "tens_xx", "channels": [IDLE], "amplitude_mA": 5}),
                        ErrorCode.UNKNOWN_PROGRAM, 228),
    "duplicate_channels": (req(START, 229, {"program": "tens_hf", "channels": [IDLE, IDLE], "amplitude_mA": 5}),
                           ErrorCode.BAD_PAYLOAD, 229),
    "start_on_running_channel": (req(START, 230, {"program": "tens_lf", "channels": [RUNNING], "amplitude_mA": 5}),
                                 ErrorCode.INVALID_STATE, 230),
    "start_idle_and_running": (req(START, 231, {"program": "tens_hf", "channels": [IDLE, RUNNING],
                                                "amplitude_mA": 5}), ErrorCode.INVALID_STATE, 231),
    "set_amplitude_on_idle_channel": (req(SA, 232, {"channel": IDLE, "amplitude_mA": 5}),
                                      ErrorCode.INVALID_STATE, 232),
}


@pytest.mark.parametrize("bad_input", sorted(BAD_INPUTS))
def test_bad_input_gets_its_error_and_leaves_the_output_unchanged(sim: Sim, bad_input: str) -> None:
    data, code, seq = BAD_INPUTS[bad_input]
    before, status_before = output_of(sim), status_of(sim)
    handled = sim.server.frames_handled

    reply = sim.link.client.transact(data, bad_input, seq=None)

    assert reply.msg_type == MsgType.ERROR, f"{bad_input}: expected an ERROR reply, got {reply}"
    assert reply.payload["code"] == code and reply.payload["name"] == code.name, reply.payload
    assert reply.payload["detail"]
    assert reply.seq == seq
    assert sim.server.frames_handled == handled + 1  # exactly one reply for the bad input
    assert_same_output(before, output_of(sim))
    # STATUS still answers (no second ERROR is pending for this input) and reports the same output
    assert status_of(sim) == status_before
    assert status_before[RUNNING - 1][1:4] == ("on", "tens_hf", 25.0)
    assert sim.firmware.channels[IDLE].schedule.segments == []


def test_every_request_type_is_answered_over_the_pty(sim: Sim) -> None:
    link = sim.link
    ident = link.identify()
    assert (ident.model, ident.serial, ident.protocol_version, ident.channels) == ("CS-4", "SIM-CS4-000042", 1, 4)
    assert link.list_programs() == ["ems_strength", "relax_recovery", "tens_hf", "tens_lf"]
    link.keepalive()
    link.set_amplitude(RUNNING, 30)
    sim.clock.wait(0.1)
    assert next(s for s in link.status() if s.channel == RUNNING).amplitude_mA == 30.0
    link.start("tens_lf", [IDLE, 3], 10)
    link.stop([IDLE])
    states = {s.channel: s.state for s in link.status()}
    assert states == {1: "on", 2: "stopped", 3: "ramp_up", 4: "idle"}
    link.emergency_stop()
    assert {s.state for s in link.status()} == {"stopped", "idle"}
    assert all(ch.schedule.current is None for ch in sim.firmware.channels.values())


def test_a_refused_request_raises_device_refused_naming_port_command_and_code(sim: Sim) -> None:
    with pytest.raises(DeviceRefused) as info:
        sim.link.set_amplitude(IDLE, 5)
    err = info.value
    assert (err.port, err.command, err.code, err.name) == (sim.link.port, "SET_AMPLITUDE", 9, "INVALID_STATE")
    assert sim.link.port in str(err)


def test_stale_reply_to_an_abandoned_request_is_skipped(sim: Sim) -> None:
    # a reply the rig gave up waiting for arrives before the next one: the client skips it by its seq
    handled = sim.server.frames_handled
    sim.link.client.stream.write(req(MsgType.IDENTIFY, 250, {}))
    time.sleep(0.05)
    statuses = sim.link.status()
    assert [s.channel for s in statuses] == [1, 2, 3, 4]
    assert sim.server.frames_handled == handled + 2  # the stale IDENTIFY reply was there, and skipped


def test_stale_error_reply_is_not_taken_for_the_next_answer(sim: Sim) -> None:
    sim.link.client.stream.write(req(MsgType.SET_AMPLITUDE, 250, {"channel": IDLE, "amplitude_mA": 5}))
    time.sleep(0.05)
    sim.link.set_amplitude(RUNNING, 20)  # valid: the device applies it ...
    assert sim.firmware.channels[RUNNING].target_mA == 20  # ... but the rig raised DeviceRefused before this


# ---- the device must survive any single frame (these two once silenced it) ------------------------------------
DEVICE_KILLERS = {
    # SET_AMPLITUDE with -1e400 written as an integer: parse_payload lets OverflowError escape
    "huge_negative_integer": raw(SA, 240, b'{"amplitude_mA":-1' + b"0" * 400 + b',"channel":1}'),
    # an extra field whose name is 390 x "é": the BAD_PAYLOAD detail quotes it, and \\u-escaped it no longer
    # fits in a reply payload (once \\uXXXX-escaped): encode_frame raises in the device's reply path
    "non_ascii_extra_field": raw(MsgType.IDENTIFY, 241, ('{"' + "é" * 390 + '":1}').encode()),
}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("killer", sorted(DEVICE_KILLERS))
def test_device_survives_frames_that_once_silenced_it(sim: Sim, killer: str) -> None:
    before = output_of(sim)
    sim.link.client.reply_timeout_s = 0.5
    reply = sim.link.client.transact(DEVICE_KILLERS[killer], killer, seq=None)
    assert reply.msg_type == MsgType.ERROR and reply.payload["code"] == ErrorCode.BAD_PAYLOAD
    assert sim.link.identify().model == "CS-4"
    assert_same_output(before, output_of(sim))


# ---- random bytes on the line while a program runs -----------------------------------------------
def resync_with_identify(sim: Sim, seq: int, garbage: bytes) -> Frame:
    """Write garbage, a delimiter and IDENTIFY; skip the ERROR replies to the garbage; return IDENTIFY's reply."""
    client = sim.link.client
    reply = client.transact(garbage + b"\x00" + req(MsgType.IDENTIFY, seq, {}), "IDENTIFY after noise", seq)
    while reply.msg_type == MsgType.ERROR:
        reply = client.transact(b"", "IDENTIFY after noise", seq)
    return reply


def holds_a_command(data: bytes) -> bool:
    """Whether ``data`` holds a well-formed request the device would act on (such bytes are not noise)."""
    for item in FrameDecoder().feed(data + b"\x00"):
        if isinstance(item, Frame):
            try:
                parse_payload(item.msg_type, item.payload)
            except PayloadError:
                continue
            except Exception:  # a frame that upsets the parser is not sent as "noise" either
                return True
            return True
    return False


NOISY_BAD_INPUTS = [data for data, _, _ in BAD_INPUTS.values() if not holds_a_command(data)]
line_noise = st.lists(
    st.binary(max_size=48)
    | st.just(b"\x00")
    | st.binary(min_size=MAX_ENCODED_BYTES - 20, max_size=MAX_ENCODED_BYTES + 60).map(lambda b: b.replace(b"\0", b"\1"))
    | st.sampled_from(NOISY_BAD_INPUTS),
    max_size=4,
).map(b"".join)


def test_random_bytes_never_change_the_output_and_the_device_keeps_answering(sim: Sim) -> None:
    before, status_before = output_of(sim), status_of(sim)
    seqs = iter(range(10**9))

    @settings(max_examples=max(10, settings().max_examples // 2), suppress_health_check=list(HealthCheck))
    @given(garbage=line_noise)
    def write_noise(garbage: bytes) -> None:
        # noise that happens to hold a well-formed request could be a legitimate command: not noise
        assume(not holds_a_command(garbage))
        seq = 1 + next(seqs) % 255
        reply = resync_with_identify(sim, seq, garbage)
        assert (reply.msg_type, reply.seq, reply.payload["model"]) == (reply_type(MsgType.IDENTIFY), seq, "CS-4")
        assert_same_output(before, output_of(sim))

    write_noise()
    assert status_of(sim) == status_before
    assert sim.link.identify().serial == "SIM-CS4-000042"


# ---- the rig's interlock and failure reporting ----------------------------------------------------
@pytest.mark.parametrize(
    ("action", "amplitude"),
    [("start", 110.5), ("start", 1e6), ("start", float("inf")), ("start", float("nan")),
     ("set_amplitude", 110.01), ("set_amplitude", float("-inf"))],
)
def test_interlock_refuses_amplitude_above_ceiling_without_sending(sim: Sim, action: str, amplitude: float) -> None:
    before = output_of(sim)
    handled = sim.server.frames_handled
    with pytest.raises(CeilingError) as info:
        if action == "start":
            sim.link.start("tens_hf", [IDLE], amplitude)
        else:
            sim.link.set_amplitude(RUNNING, amplitude)
    assert sim.link.port in str(info.value) and "nothing was sent" in str(info.value)
    time.sleep(0.05)
    assert sim.server.frames_handled == handled, "the device saw a frame the interlock should have stopped"
    assert_same_output(before, output_of(sim))


def test_amplitude_at_the_ceiling_is_sent_and_refused_by_the_device(sim: Sim) -> None:
    handled = sim.server.frames_handled
    with pytest.raises(DeviceRefused) as info:
        sim.link.set_amplitude(RUNNING, CEILING_MA)  # the rig's limit, not the device's (100 mA)
    assert info.value.code == ErrorCode.OUT_OF_RANGE
    assert sim.server.frames_handled == handled + 1


class FakeDevice:
    """A pty pair whose master side answers every frame with ``answer(frame)`` bytes (None: silent)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.received: list[Frame] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        decoder = FrameDecoder()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for item in decoder.feed(data):
                if isinstance(item, Frame):
                    self.received.append(item)
                    out = self.answer(item)
                    if out:
                        os.write(self.master, out)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def fake_link(answer: Any, reply_timeout_s: float) -> Iterator[tuple[FakeDevice, SerialDutLink]]:
    dev = FakeDevice(answer)
    link = SerialDutLink(dev.port, baudrate=115200, reply_timeout_s=reply_timeout_s, ceiling_mA=CEILING_MA)
    try:
        yield dev, link
    finally:
        link.close()
        dev.close()


def corrupt_crc_reply(frame: Frame) -> bytes:
    good = encode_frame(Frame(reply_type(frame.msg_type), frame.seq, {"model": "CS-4"}))
    body = bytearray(cobs.decode(good[:-1]))
    body[-1] ^= 0x01  # one bit of the CRC flipped on the way back
    return cobs.encode(bytes(body)) + b"\x00"


def test_reply_with_corrupted_crc_raises_protocol_error_naming_the_port() -> None:
    with fake_link(corrupt_crc_reply, reply_timeout_s=2.0) as (dev, link), pytest.raises(ProtocolError) as info:
        link.identify()
    message = str(info.value)
    assert message.startswith(f"{dev.port}: reply to IDENTIFY is corrupt")
    assert "CRC mismatch" in message
    assert [f.msg_type for f in dev.received] == [MsgType.IDENTIFY]


def test_silent_device_raises_dut_error_naming_the_port_within_the_timeout() -> None:
    timeout_s = 0.3
    with fake_link(lambda frame: None, reply_timeout_s=timeout_s) as (dev, link):
        t0 = time.monotonic()
        with pytest.raises(DutError) as info:
            link.status()
        elapsed = time.monotonic() - t0
    assert type(info.value) is DutError
    assert str(info.value).startswith(f"{dev.port}: no reply to STATUS within 0.3 s")
    assert timeout_s <= elapsed < timeout_s + 0.5
    assert [f.msg_type for f in dev.received] == [MsgType.STATUS]  # the request did go out

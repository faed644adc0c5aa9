"""Malformed frames, bad CRC, unknown commands and out-of-range values get an error reply and never
change the output (IEC 60601-1 12.4: incorrect output must not follow from a corrupted command)."""

from __future__ import annotations

import json

import pytest
from cobs import cobs

from rig.measurements import Measurement
from rig.procedures import acquisition, analyse, capture, plan_for, settle_time_s
from rig.protocol.framing import Frame, crc16, encode_frame
from rig.protocol.messages import ErrorCode, MsgType
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named, start_running


def _body(version: int, seq: int, kind: int, payload: dict) -> bytes:
    return bytes((version, seq, kind)) + json.dumps(payload).encode()


def _with_crc(body: bytes, flip: bool = False) -> bytes:
    crc = crc16(body) ^ (0x0001 if flip else 0)
    return cobs.encode(body + crc.to_bytes(2, "big")) + b"\x00"


BAD_INPUTS = {
    "bad_crc": (_with_crc(_body(1, 201, MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": 5}), flip=True),
                ErrorCode.BAD_CRC),
    "broken_cobs": (b"\x09\x01\x02\x00", ErrorCode.BAD_FRAME),
    "unsupported_version": (_with_crc(_body(9, 202, MsgType.STATUS, {})), ErrorCode.UNSUPPORTED_VERSION),
    "unknown_command": (encode_frame(Frame(0x55, 203, {})), ErrorCode.UNKNOWN_COMMAND),
    "payload_not_json": (_with_crc(bytes((1, 204, MsgType.SET_AMPLITUDE)) + b"\xff{"), ErrorCode.BAD_PAYLOAD),
    "wrong_field_type": (encode_frame(Frame(MsgType.SET_AMPLITUDE, 205, {"channel": 1, "amplitude_mA": "max"})),
                         ErrorCode.BAD_PAYLOAD),
    "negative_amplitude": (encode_frame(Frame(MsgType.SET_AMPLITUDE, 206, {"channel": 1, "amplitude_mA": -5})),
                           ErrorCode.OUT_OF_RANGE),
    "no_such_channel": (encode_frame(Frame(MsgType.SET_AMPLITUDE, 207, {"channel": 99, "amplitude_mA": 5})),
                        ErrorCode.BAD_CHANNEL),
}


@pytest.mark.requirement("PROT-BAD-INPUT")
@pytest.mark.parametrize("bad_input", sorted(BAD_INPUTS))
def test_bad_frame_refused_output_unchanged(bad_input, bench, dut, scope, device_model, measure):
    program = bench.programs[0]
    channel = 1
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))
    start_running(bench, dut, measure, program, channel, program.amplitude_mA, settle_time_s(program))
    before = {s.channel: (s.state, s.target_mA) for s in dut.status()}

    raw, expected = BAD_INPUTS[bad_input]
    reply = dut.client.transact(raw, bad_input, seq=None)
    code = int(reply.payload.get("code", -1)) if reply.msg_type == MsgType.ERROR else 0
    measure(Measurement("error_code", "code", low=int(expected), high=int(expected),
                        description=f"error reply {expected.name} expected"), code, input=bad_input)

    after = {s.channel: (s.state, s.target_mA) for s in dut.status()}
    measure(Measurement("status_unchanged", "bool", low=1, high=1), float(before == after), before=str(before),
            after=str(after))
    cfg = bench.config.scope
    plan = plan_for(device_model, program.amplitude_mA, MEASUREMENT_LOAD_OHM, cfg.measure_channel,
                    cfg.probe_attenuation)
    train = analyse(capture(scope, acquisition(program, plan, "train"), cfg.timeout_s))
    nominal = program.amplitude_mA
    highest = max(1000.0 * a / MEASUREMENT_LOAD_OHM for a in train.phase1_amplitude)
    measure(Measurement.around("amplitude_after_bad_input", "mA", nominal,
                               device_model.tolerances.amplitude_band_mA(nominal),
                               source=device_model.source_of("tolerances.amplitude_pct")), highest)

"""Framing and message layer of the device protocol (docs/protocol.md): known vectors, round trips of
every message type, every framing error, and the incremental stream decoder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cobs import cobs

from rig.protocol import (
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    REQUEST_SCHEMAS,
    ErrorCode,
    Frame,
    FrameDecoder,
    FrameError,
    MsgType,
    decode_frame,
    encode_frame,
    error_payload,
    parse_payload,
    reply_type,
)
from rig.protocol.framing import MAX_ENCODED_BYTES, crc16
from rig.protocol.messages import Empty, PayloadError, SetAmplitudeRequest, StartRequest, StopRequest


def raw_frame(version: int, seq: int, msg_type: int, payload: bytes, *, crc_xor: int = 0) -> bytes:
    """A wire frame built by hand (any payload bytes, optionally a wrong CRC), delimiter included."""
    body = bytes((version, seq, msg_type)) + payload
    return cobs.encode(body + (crc16(body) ^ crc_xor).to_bytes(2, "big")) + b"\x00"


def items(decoder: FrameDecoder, data: bytes) -> list[Frame | FrameError]:
    return list(decoder.feed(data))


def frames_of(out: list[Frame | FrameError]) -> list[Frame]:
    return [x for x in out if isinstance(x, Frame)]


def errors_of(out: list[Frame | FrameError]) -> list[FrameError]:
    return [x for x in out if isinstance(x, FrameError)]


# ---- CRC-16/CCITT-FALSE ---------------------------------------------------------------------------
def crc16_reference(data: bytes) -> int:
    """Bit-by-bit CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0x29B1),  # the catalogue check value of CRC-16/CCITT-FALSE
        (b"", 0xFFFF),  # init value, no final XOR
        (b"A", 0xB915),
        (bytes(range(256)), crc16_reference(bytes(range(256)))),
        (bytes.fromhex("0101017b7d"), 0x8140),  # body of IDENTIFY seq 1 (docs/protocol.md)
    ],
)
def test_crc16_known_vectors(data: bytes, expected: int) -> None:
    assert crc16(data) == expected
    assert crc16_reference(data) == expected


def test_crc_is_big_endian_on_the_wire() -> None:
    wire = encode_frame(Frame(MsgType.IDENTIFY, 1))
    body = cobs.decode(wire[:-1])
    assert body[-2:] == bytes((0x81, 0x40)) == crc16(body[:-2]).to_bytes(2, "big")


# ---- COBS -----------------------------------------------------------------------------------------
COBS_VECTORS = [  # the reference examples of Cheshire & Baker's COBS (as listed on Wikipedia)
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize(("plain", "encoded"), COBS_VECTORS, ids=[f"v{i}" for i in range(len(COBS_VECTORS))])
def test_cobs_known_vectors(plain: bytes, encoded: bytes) -> None:
    assert cobs.encode(plain) == encoded
    assert cobs.decode(encoded) == plain
    assert b"\x00" not in encoded


def test_frame_body_with_zero_bytes_is_stuffed() -> None:
    # seq 0 and type 0 put zeros in the header; none may reach the wire before the delimiter
    wire = encode_frame(Frame(0, 0, {}))
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    assert decode_frame(wire[:-1]) == Frame(0, 0, {})


# ---- exact bytes of the worked examples in docs/protocol.md ---------------------------------------
WIRE_EXAMPLES = [
    (Frame(MsgType.IDENTIFY, 1), "08 01 01 01 7b 7d 81 40 00"),
    (Frame(MsgType.KEEPALIVE, 6), "08 01 06 08 7b 7d 4e fc 00"),
    (Frame(MsgType.START | 0x80, 3), "08 01 03 83 7b 7d 39 12 00"),
    (
        Frame(MsgType.SET_AMPLITUDE, 4, {"channel": 1, "amplitude_mA": 30}),
        "25 01 04 04 7b 22 61 6d 70 6c 69 74 75 64 65 5f 6d 41 22 3a 33 30 2c 22 63 68 61 6e 6e 65 6c 22 3a 31 7d "
        "a6 04 00",
    ),
    (
        Frame(MsgType.STOP, 8, {"channels": [1]}),
        "16 01 08 05 7b 22 63 68 61 6e 6e 65 6c 73 22 3a 5b 31 5d 7d c2 bf 00",
    ),
]


@pytest.mark.parametrize(("frame", "hexdump"), WIRE_EXAMPLES, ids=[f"{f.msg_type:#04x}" for f, _ in WIRE_EXAMPLES])
def test_documented_wire_bytes(frame: Frame, hexdump: str) -> None:
    wire = bytes.fromhex(hexdump)
    assert encode_frame(frame) == wire
    assert decode_frame(wire[:-1]) == frame


def test_payload_encoding_is_compact_sorted_json() -> None:
    wire = encode_frame(Frame(MsgType.START, 3, {"program": "tens_hf", "channels": [1], "amplitude_mA": 25}))
    body = cobs.decode(wire[:-1])
    assert body[:3] == bytes((PROTOCOL_VERSION, 3, MsgType.START))
    assert body[3:-2] == b'{"amplitude_mA":25,"channels":[1],"program":"tens_hf"}'


# ---- round trip of every message type -------------------------------------------------------------
REQUESTS = {
    MsgType.IDENTIFY: {},
    MsgType.LIST_PROGRAMS: {},
    MsgType.START: {"program": "tens_hf", "channels": [1, 3], "amplitude_mA": 25.5},
    MsgType.SET_AMPLITUDE: {"channel": 2, "amplitude_mA": 30},
    MsgType.STOP: {"channels": [1, 2]},
    MsgType.EMERGENCY_STOP: {},
    MsgType.STATUS: {},
    MsgType.KEEPALIVE: {},
}
REPLIES = {
    MsgType.IDENTIFY: {"model": "CS-4", "serial": "SIM-CS4-000042", "firmware": "1.4.2", "protocol": 1, "channels": 4},
    MsgType.LIST_PROGRAMS: {"programs": ["ems_strength", "relax_recovery", "tens_hf", "tens_lf"]},
    MsgType.START: {},
    MsgType.SET_AMPLITUDE: {},
    MsgType.STOP: {},
    MsgType.EMERGENCY_STOP: {},
    MsgType.STATUS: {
        "channels": [
            {"channel": 1, "state": "on", "program": "tens_hf", "amplitude_mA": 25.0, "target_mA": 25.0,
             "elapsed_s": 3.004},
            {"channel": 2, "state": "idle", "program": None, "amplitude_mA": 0.0, "target_mA": 0.0, "elapsed_s": 0.0},
        ]
    },
    MsgType.KEEPALIVE: {},
}


def test_every_request_type_has_a_schema_and_a_reply() -> None:
    requests = {k for k in MsgType if k is not MsgType.ERROR}
    assert set(REQUEST_SCHEMAS) == requests == set(REQUESTS) == set(REPLIES)
    for kind in requests:
        assert reply_type(kind) == kind | 0x80
        assert reply_type(kind) not in {int(m) for m in MsgType}


@pytest.mark.parametrize("kind", list(REQUESTS), ids=lambda k: k.name)
@pytest.mark.parametrize("seq", [0, 1, 127, 255])
def test_request_and_reply_round_trip(kind: MsgType, seq: int) -> None:
    request = Frame(int(kind), seq, REQUESTS[kind])
    reply = Frame(reply_type(kind), seq, REPLIES[kind])
    for frame in (request, reply):
        wire = encode_frame(frame)
        assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
        assert decode_frame(wire[:-1]) == frame
        assert items(FrameDecoder(), wire) == [frame]
    parsed_kind, parsed = parse_payload(request.msg_type, decode_frame(encode_frame(request)[:-1]).payload)
    assert parsed_kind is kind
    assert isinstance(parsed, REQUEST_SCHEMAS[kind])


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.name)
def test_error_reply_round_trip(code: ErrorCode) -> None:
    frame = Frame(MsgType.ERROR, 42, error_payload(code, f"why {code.name} was sent"))
    assert frame.payload == {"code": int(code), "name": code.name, "detail": f"why {code.name} was sent"}
    assert decode_frame(encode_frame(frame)[:-1]) == frame


def test_error_detail_is_truncated_to_200_characters() -> None:
    # 200 characters of at most 4 UTF-8 bytes each always fit in a reply frame
    assert len(error_payload(ErrorCode.BAD_PAYLOAD, "x" * 1000)["detail"]) == 200


def test_error_codes_are_stable() -> None:
    # codes are part of the wire protocol: renumbering one is a protocol version change
    assert {c.name: int(c) for c in ErrorCode} == {
        "BAD_FRAME": 1, "BAD_CRC": 2, "UNSUPPORTED_VERSION": 3, "UNKNOWN_COMMAND": 4, "BAD_PAYLOAD": 5,
        "OUT_OF_RANGE": 6, "UNKNOWN_PROGRAM": 7, "BAD_CHANNEL": 8, "INVALID_STATE": 9, "FAULT_ACTIVE": 10,
        "NOT_CONNECTED": 11,
    }
    assert {m.name: int(m) for m in MsgType} == {
        "IDENTIFY": 1, "LIST_PROGRAMS": 2, "START": 3, "SET_AMPLITUDE": 4, "STOP": 5, "EMERGENCY_STOP": 6,
        "STATUS": 7, "KEEPALIVE": 8, "ERROR": 0x7F,
    }


# ---- size limits ----------------------------------------------------------------------------------
def _payload_of_size(n: int) -> dict[str, str]:
    return {"x": "a" * (n - len('{"x":""}'))}


def test_largest_payload_round_trips_within_max_encoded_size() -> None:
    frame = Frame(MsgType.STATUS | 0x80, 9, _payload_of_size(MAX_PAYLOAD_BYTES))
    wire = encode_frame(frame)
    assert len(wire) - 1 <= MAX_ENCODED_BYTES
    assert decode_frame(wire[:-1]) == frame
    assert items(FrameDecoder(), wire) == [frame]


def test_encoder_refuses_oversized_payload() -> None:
    with pytest.raises(ValueError, match=f"exceeds {MAX_PAYLOAD_BYTES}"):
        encode_frame(Frame(MsgType.STATUS, 1, _payload_of_size(MAX_PAYLOAD_BYTES + 1)))


@pytest.mark.parametrize(
    "frame",
    [Frame(1, 256), Frame(1, -1), Frame(256, 1), Frame(-1, 1), Frame(1, 1, version=256), Frame(1, 1, version=-1)],
    ids=["seq256", "seq-1", "type256", "type-1", "version256", "version-1"],
)
def test_encoder_refuses_header_fields_outside_a_byte(frame: Frame) -> None:
    with pytest.raises(ValueError, match="one byte"):
        encode_frame(frame)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encoder_refuses_non_finite_numbers(value: float) -> None:
    with pytest.raises(ValueError):
        encode_frame(Frame(MsgType.SET_AMPLITUDE, 1, {"channel": 1, "amplitude_mA": value}))


# ---- decode errors: code and seq of each ----------------------------------------------------------
def _decode_error(wire: bytes) -> FrameError:
    with pytest.raises(FrameError) as info:
        decode_frame(wire[:-1] if wire.endswith(b"\x00") else wire)
    return info.value


def test_bad_crc_reports_the_seq_byte_as_received() -> None:
    err = _decode_error(raw_frame(1, 201, MsgType.STATUS, b"{}", crc_xor=0x0001))
    assert (err.code, err.seq) == (ErrorCode.BAD_CRC, 201)
    assert "CRC mismatch" in err.detail


def test_corrupted_seq_byte_is_a_bad_crc_with_the_corrupted_seq() -> None:
    body = bytearray(cobs.decode(encode_frame(Frame(MsgType.STATUS, 10))[:-1]))
    body[1] = 99  # the seq byte itself was hit on the line
    err = _decode_error(cobs.encode(bytes(body)))
    assert (err.code, err.seq) == (ErrorCode.BAD_CRC, 99)


@pytest.mark.parametrize(
    "wire",
    [b"\x09\x01\x02", b"\x05\x01", b"\x02"],
    ids=["cobs-length-code-past-end", "cobs-truncated", "cobs-one-byte"],
)
def test_broken_cobs_is_bad_frame_without_seq(wire: bytes) -> None:
    err = _decode_error(wire)
    assert (err.code, err.seq) == (ErrorCode.BAD_FRAME, None)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_body_shorter_than_header_and_crc_is_bad_frame(n: int) -> None:
    err = _decode_error(cobs.encode(bytes([1, 5, 1, 0x7B, 0x7D][:n])))
    assert (err.code, err.seq) == (ErrorCode.BAD_FRAME, None)


def test_over_long_encoded_frame_is_bad_frame() -> None:
    err = _decode_error(b"\xff" * (MAX_ENCODED_BYTES + 1))
    assert (err.code, err.seq) == (ErrorCode.BAD_FRAME, None)
    assert "exceeds" in err.detail


@pytest.mark.parametrize("version", [0, 2, 9, 255])
def test_other_protocol_versions_are_refused(version: int) -> None:
    err = _decode_error(raw_frame(version, 202, MsgType.STATUS, b"{}"))
    assert (err.code, err.seq) == (ErrorCode.UNSUPPORTED_VERSION, 202)
    assert err.detail == f"protocol version {version} (expected 1)"


def test_crc_is_checked_before_the_version() -> None:
    err = _decode_error(raw_frame(9, 7, MsgType.STATUS, b"{}", crc_xor=0x8000))
    assert err.code == ErrorCode.BAD_CRC


@pytest.mark.parametrize(
    "payload",
    [b"\xff{", b'{"a":1', b"[1,2]", b'"text"', b"42", b"null", b"{'a':1}", b"\xc3\x28", b"[" * 1024],
    ids=["not-utf8", "truncated", "array", "string", "number", "null", "single-quotes", "bad-utf8", "deep-nesting"],
)
def test_payload_that_is_not_a_json_object_is_bad_payload(payload: bytes) -> None:
    err = _decode_error(raw_frame(1, 204, MsgType.SET_AMPLITUDE, payload))
    assert (err.code, err.seq) == (ErrorCode.BAD_PAYLOAD, 204)


def test_payload_over_the_limit_is_refused() -> None:
    # 1025 bytes: the encoded frame is still within MAX_ENCODED_BYTES, so the payload check answers (with seq)
    payload = json.dumps(_payload_of_size(MAX_PAYLOAD_BYTES + 1)).replace(" ", "").encode()
    assert len(payload) == MAX_PAYLOAD_BYTES + 1
    err = _decode_error(raw_frame(1, 205, MsgType.STATUS, payload))
    assert (err.code, err.seq) == (ErrorCode.BAD_PAYLOAD, 205)
    # 1027 bytes without zeros: COBS adds 5 bytes, the frame exceeds MAX_ENCODED_BYTES: BAD_FRAME, no seq
    payload = json.dumps(_payload_of_size(MAX_PAYLOAD_BYTES + 3)).replace(" ", "").encode()
    err = _decode_error(raw_frame(1, 205, MsgType.STATUS, payload))
    assert (err.code, err.seq) == (ErrorCode.BAD_FRAME, None)


def test_empty_payload_is_an_empty_object() -> None:
    assert decode_frame(raw_frame(1, 3, MsgType.STATUS, b"")[:-1]) == Frame(MsgType.STATUS, 3, {})


def test_decoder_accepts_raw_utf8_and_whitespace() -> None:
    frame = decode_frame(raw_frame(1, 3, MsgType.STATUS, ' { "name" : "Müller" } '.encode())[:-1])
    assert frame.payload == {"name": "Müller"}
    # the encoder sends compact UTF-8 JSON, keys sorted
    body = cobs.decode(encode_frame(Frame(MsgType.STATUS, 3, {"name": "Müller"}))[:-1])
    assert body[3:-2] == '{"name":"Müller"}'.encode()


# ---- FrameDecoder ---------------------------------------------------------------------------------
STREAM_FRAMES = [
    Frame(MsgType.IDENTIFY, 1),
    Frame(MsgType.START, 2, {"program": "tens_hf", "channels": [1, 2], "amplitude_mA": 25.0}),
    Frame(MsgType.STATUS | 0x80, 3, {"blob": "z" * 600}),  # several COBS blocks
    Frame(0, 0, {}),  # zero bytes in the header
    Frame(MsgType.ERROR, 255, error_payload(ErrorCode.BAD_CRC, "x")),
]
STREAM = b"".join(encode_frame(f) for f in STREAM_FRAMES)


def test_several_frames_in_one_chunk() -> None:
    assert items(FrameDecoder(), STREAM) == STREAM_FRAMES


def test_frames_split_at_every_byte_boundary() -> None:
    for cut in range(len(STREAM) + 1):
        dec = FrameDecoder()
        assert items(dec, STREAM[:cut]) + items(dec, STREAM[cut:]) == STREAM_FRAMES, f"split at byte {cut}"


def test_frames_fed_one_byte_at_a_time() -> None:
    dec = FrameDecoder()
    out: list[Frame | FrameError] = []
    for i in range(len(STREAM)):
        out += items(dec, STREAM[i : i + 1])
    assert out == STREAM_FRAMES


def test_incomplete_frame_yields_nothing_until_its_delimiter() -> None:
    wire = encode_frame(STREAM_FRAMES[1])
    dec = FrameDecoder()
    assert items(dec, wire[:-1]) == []
    assert items(dec, b"") == []
    assert items(dec, b"\x00") == [STREAM_FRAMES[1]]


def test_idle_delimiters_are_ignored() -> None:
    out = items(FrameDecoder(), b"\x00\x00" + encode_frame(STREAM_FRAMES[0]) + b"\x00\x00\x00")
    assert out == [STREAM_FRAMES[0]]


def test_garbage_between_frames_gives_errors_and_the_frames_survive() -> None:
    garbage = [b"\x13\x37\xde\xad\x00", b"\x01\x00", b"\xff" * 40 + b"\x00", b"\x09\x01\x02\x00"]
    stream = b"".join(encode_frame(f) + g for f, g in zip(STREAM_FRAMES, [*garbage, b""], strict=True))
    for chunk in (1, 7, len(stream)):
        dec = FrameDecoder()
        out: list[Frame | FrameError] = []
        for i in range(0, len(stream), chunk):
            out += items(dec, stream[i : i + chunk])
        assert frames_of(out) == STREAM_FRAMES
        assert len(errors_of(out)) == len(garbage)
        assert all(e.code in (ErrorCode.BAD_FRAME, ErrorCode.BAD_CRC) for e in errors_of(out))


def test_garbage_without_delimiter_spoils_only_the_next_frame() -> None:
    # Garbage that is not followed by 0x00 is glued onto the next frame: that frame is lost (one error),
    # the ones after it are decoded. A sender can protect a frame by sending 0x00 before it.
    a, b = STREAM_FRAMES[0], STREAM_FRAMES[1]
    out = items(FrameDecoder(), b"\x13\x37" + encode_frame(a) + encode_frame(b))
    assert len(errors_of(out)) == 1 and frames_of(out) == [b]
    out = items(FrameDecoder(), b"\x13\x37" + b"\x00" + encode_frame(a) + encode_frame(b))
    assert len(errors_of(out)) == 1 and frames_of(out) == [a, b]


def test_over_long_run_is_bounded_reported_once_then_resynchronises() -> None:
    dec = FrameDecoder()
    out: list[Frame | FrameError] = []
    chunk = bytes(range(1, 101))
    for _ in range(200):  # 20 000 bytes without a delimiter
        out += items(dec, chunk)
        assert len(dec._buf) <= MAX_ENCODED_BYTES + len(chunk), "decoder buffer grows without bound"
    assert len(out) == 1
    assert (out[0].code, out[0].seq) == (ErrorCode.BAD_FRAME, None)
    assert "without a delimiter" in out[0].detail
    # the rest of the run up to the next 0x00 is discarded silently; decoding resumes after it
    out = items(dec, chunk + b"\x00" + STREAM)
    assert out == STREAM_FRAMES


def test_over_long_run_swallows_a_frame_not_preceded_by_a_delimiter() -> None:
    dec = FrameDecoder()
    out = items(dec, b"\x55" * (MAX_ENCODED_BYTES + 1))
    assert len(errors_of(out)) == 1
    # the resynchronisation point is the next 0x00, which here is this frame's own delimiter
    assert items(dec, encode_frame(STREAM_FRAMES[0])) == []
    assert items(dec, encode_frame(STREAM_FRAMES[1])) == [STREAM_FRAMES[1]]


def test_over_long_run_in_one_chunk_with_its_delimiter_is_one_error() -> None:
    out = items(FrameDecoder(), b"\x55" * 5000 + b"\x00" + STREAM)
    assert len(errors_of(out)) == 1 and errors_of(out)[0].code == ErrorCode.BAD_FRAME
    assert frames_of(out) == STREAM_FRAMES


def test_frame_of_exactly_max_encoded_length_is_not_an_overflow() -> None:
    dec = FrameDecoder()
    assert items(dec, b"\x55" * MAX_ENCODED_BYTES) == []
    out = items(dec, b"\x00")
    assert len(out) == 1 and out[0].code == ErrorCode.BAD_FRAME and "COBS" in out[0].detail


# ---- parse_payload --------------------------------------------------------------------------------
def test_valid_requests_are_parsed_into_their_schema() -> None:
    assert parse_payload(MsgType.IDENTIFY, {}) == (MsgType.IDENTIFY, Empty())
    kind, start = parse_payload(MsgType.START, {"program": "tens_hf", "channels": [1, 2], "amplitude_mA": 25})
    assert kind is MsgType.START and start == StartRequest(program="tens_hf", channels=[1, 2], amplitude_mA=25.0)
    assert type(start.amplitude_mA) is float  # a JSON integer is accepted where a number is expected
    kind, sa = parse_payload(MsgType.SET_AMPLITUDE, {"channel": 3, "amplitude_mA": 12.5})
    assert sa == SetAmplitudeRequest(channel=3, amplitude_mA=12.5)
    assert parse_payload(MsgType.STOP, {})[1] == StopRequest(channels=None)
    assert parse_payload(MsgType.STOP, {"channels": None})[1] == StopRequest(channels=None)
    assert parse_payload(MsgType.STOP, {"channels": []})[1] == StopRequest(channels=[])


@pytest.mark.parametrize(
    ("msg_type", "payload", "code"),
    [
        (0x00, {}, ErrorCode.UNKNOWN_COMMAND),
        (0x55, {}, ErrorCode.UNKNOWN_COMMAND),
        (MsgType.ERROR, {}, ErrorCode.UNKNOWN_COMMAND),
        (MsgType.IDENTIFY | 0x80, {}, ErrorCode.UNKNOWN_COMMAND),
        (MsgType.IDENTIFY, {"verbose": True}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "tens_hf", "channels": [1]}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "tens_hf", "channels": [], "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "", "channels": [1], "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "p" * 33, "channels": [1], "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "tens_hf", "channels": list(range(1, 18)), "amplitude_mA": 5},
         ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "tens_hf", "channels": 1, "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "tens_hf", "channels": ["1"], "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": 7, "channels": [1], "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.START, {"program": "tens_hf", "channels": [1], "amplitude_mA": 5, "x": 1}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": "max"}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": True}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": None}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": float("nan")}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": float("inf")}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": 1.0, "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": True, "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.SET_AMPLITUDE, {"channel": "1", "amplitude_mA": 5}, ErrorCode.BAD_PAYLOAD),
        (MsgType.STOP, {"channels": 1}, ErrorCode.BAD_PAYLOAD),
        (MsgType.STOP, {"channels": list(range(17))}, ErrorCode.BAD_PAYLOAD),
        (MsgType.STATUS, {"channel": 1}, ErrorCode.BAD_PAYLOAD),
    ],
)
def test_invalid_requests_raise_payload_error(msg_type: int, payload: dict, code: ErrorCode) -> None:
    with pytest.raises(PayloadError) as info:
        parse_payload(msg_type, payload)
    assert info.value.code == code


def test_payload_error_names_the_field() -> None:
    with pytest.raises(PayloadError, match=r"SET_AMPLITUDE: field 'amplitude_mA'"):
        parse_payload(MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": "max"})
    with pytest.raises(PayloadError, match=r"START: field 'boost': Extra inputs are not permitted"):
        parse_payload(MsgType.START, {"program": "tens_hf", "channels": [1], "amplitude_mA": 5, "boost": 1})
    with pytest.raises(PayloadError, match=r"unknown message type 0x55"):
        parse_payload(0x55, {})


# ---- the worked examples in docs/protocol.md are real bytes ---------------------------------------
def _doc_dumps() -> list[bytes]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    dumps = []
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        lines = block.strip().splitlines()
        if lines and all(re.fullmatch(r"[0-9a-f]{4}( +[0-9a-f]{2})+", ln) for ln in lines):
            dumps.append(bytes.fromhex(" ".join(ln.split(None, 1)[1] for ln in lines)))
    return dumps


def test_protocol_doc_hex_dumps_are_what_the_code_sends() -> None:
    dumps = _doc_dumps()
    assert len(dumps) >= 20
    for wire in dumps:
        assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
        out = items(FrameDecoder(), wire)
        assert len(out) == 1
        if isinstance(out[0], Frame):  # every well-formed example re-encodes to exactly the documented bytes
            assert encode_frame(out[0]) == wire
    errors = [e for w in dumps for e in items(FrameDecoder(), w) if isinstance(e, FrameError)]
    assert sorted(e.code for e in errors) == [ErrorCode.BAD_FRAME, ErrorCode.BAD_CRC]  # examples 10 and 11

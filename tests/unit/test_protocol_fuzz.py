"""Property-based fuzzing of the protocol: the encoder, the stream decoder and request validation.

Bounded for CI (the repository's hypothesis profile; STIMRIG_HYPOTHESIS=thorough runs more examples).
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rig.protocol import (
    MAX_PAYLOAD_BYTES,
    REQUEST_SCHEMAS,
    ErrorCode,
    Frame,
    FrameDecoder,
    FrameError,
    MsgType,
    decode_frame,
    encode_frame,
    parse_payload,
)
from rig.protocol.framing import MAX_ENCODED_BYTES
from rig.protocol.messages import PayloadError, SetAmplitudeRequest, StartRequest, StopRequest

EXAMPLES = settings().max_examples  # from the active profile (conftest.py)
FRAMING_CODES = {ErrorCode.BAD_FRAME, ErrorCode.BAD_CRC, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.BAD_PAYLOAD}

# ---- strategies ------------------------------------------------------------------------------------
# Integers are bounded to what a float can hold: larger ones hit a known bug of parse_payload
# (see test_parse_payload_huge_integer_is_a_payload_error below).
json_ints = st.integers(min_value=-(2**1000), max_value=2**1000)
json_leaves = st.none() | st.booleans() | json_ints | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
plain_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), min_size=200)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6) | st.fixed_dictionaries(
    {"blob": plain_text.filter(lambda t: len(t) <= MAX_PAYLOAD_BYTES - len('{"blob":""}'))}  # up to the limit
)


def payload_bytes(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())


def fits(payload: dict[str, Any]) -> bool:
    return payload_bytes(payload) <= MAX_PAYLOAD_BYTES


bytes_ = st.integers(min_value=0, max_value=255)
valid_frames = st.builds(Frame, msg_type=bytes_, seq=bytes_, payload=json_objects.filter(fits))


def same(a: Any, b: Any) -> bool:
    """Equal with the same JSON types (True is not 1, 1 is not 1.0, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def decode_stream(chunks: list[bytes]) -> list[Frame | FrameError]:
    dec = FrameDecoder()
    out: list[Frame | FrameError] = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def summary(out: list[Frame | FrameError]) -> list[tuple[Any, ...]]:
    return [("frame", x) if isinstance(x, Frame) else ("error", x.code, x.seq) for x in out]


# ---- encoder --------------------------------------------------------------------------------------
@given(frame=valid_frames)
def test_valid_frames_round_trip_exactly(frame: Frame) -> None:
    wire = encode_frame(frame)
    assert wire[-1:] == b"\x00" and b"\x00" not in wire[:-1]
    assert len(wire) - 1 <= MAX_ENCODED_BYTES
    decoded = decode_frame(wire[:-1])
    assert (decoded.version, decoded.seq, decoded.msg_type) == (frame.version, frame.seq, frame.msg_type)
    assert same(decoded.payload, frame.payload)
    assert list(FrameDecoder().feed(wire)) == [decoded]


@given(frame=valid_frames, version=bytes_.filter(lambda v: v != 1))
def test_frames_of_another_version_encode_but_are_refused(frame: Frame, version: int) -> None:
    wire = encode_frame(Frame(frame.msg_type, frame.seq, frame.payload, version))
    with pytest.raises(FrameError) as info:
        decode_frame(wire[:-1])
    assert (info.value.code, info.value.seq) == (ErrorCode.UNSUPPORTED_VERSION, frame.seq)


outside_byte = st.integers(max_value=-1) | st.integers(min_value=256)
bad_headers = st.one_of(
    st.builds(Frame, msg_type=outside_byte, seq=bytes_),
    st.builds(Frame, msg_type=bytes_, seq=outside_byte),
    st.builds(Frame, msg_type=bytes_, seq=bytes_, version=outside_byte),
)
oversized = st.builds(
    Frame,
    msg_type=bytes_,
    seq=bytes_,
    payload=st.builds(lambda t, extra: {"blob": t, **extra}, st.text(min_size=MAX_PAYLOAD_BYTES - 10,
                                                                      max_size=MAX_PAYLOAD_BYTES + 500),
                      json_objects).filter(lambda p: not fits(p)),
)
non_finite = st.builds(
    Frame,
    msg_type=bytes_,
    seq=bytes_,
    payload=st.builds(
        lambda p, key, bad: {**p, key: bad},
        json_objects.filter(fits),
        st.text(max_size=5),
        st.sampled_from([math.nan, math.inf, -math.inf]) | st.lists(st.just(math.nan), min_size=1, max_size=2),
    ),
)


@given(frame=st.one_of(bad_headers, oversized, non_finite))
def test_invalid_frames_raise_value_error(frame: Frame) -> None:
    with pytest.raises(ValueError):
        encode_frame(frame)


@pytest.mark.parametrize(
    "payload",
    [{"raw": b"\x01"}, {"set": {1, 2}}, {1: "a", "b": 2}, [1, 2], "text", None],
    ids=["bytes-value", "set-value", "mixed-key-types", "list", "str", "null"],
)
def test_unencodable_payloads_raise_value_error(payload: Any) -> None:
    with pytest.raises(ValueError):
        encode_frame(Frame(MsgType.STATUS, 1, payload))


# ---- decoder --------------------------------------------------------------------------------------
line_noise = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.just(b"\x00"),
        valid_frames.map(encode_frame),
        st.binary(min_size=MAX_ENCODED_BYTES - 5, max_size=MAX_ENCODED_BYTES + 300).map(
            lambda b: b.replace(b"\x00", b"\x01")  # long runs without a delimiter
        ),
    ),
    max_size=8,
).map(b"".join)


@settings(max_examples=EXAMPLES * 2)
@given(data=st.binary(max_size=2500) | line_noise, cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_decoder_never_raises_and_only_yields_frames_or_errors(data: bytes, cuts: list[int]) -> None:
    chunks = split(data, cuts)
    dec = FrameDecoder()
    out: list[Frame | FrameError] = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
        assert len(dec._buf) <= MAX_ENCODED_BYTES + len(chunk)  # bounded by the limit, whatever arrives
    for item in out:
        if isinstance(item, FrameError):
            assert item.code in FRAMING_CODES
            assert item.seq is None or 0 <= item.seq <= 255
        else:
            assert isinstance(item, Frame)
            assert item.version == 1 and 0 <= item.seq <= 255 and 0 <= item.msg_type <= 255
            assert isinstance(item.payload, dict)
    # how the bytes were chunked by the transport does not change what is decoded
    assert summary(out) == summary(decode_stream([data]))


@given(frames=st.lists(valid_frames, min_size=1, max_size=4), garbage=st.lists(st.binary(max_size=80), max_size=4),
       cuts=st.lists(st.integers(0, 6000), max_size=10))
def test_delimited_garbage_between_frames_never_loses_a_frame(
    frames: list[Frame], garbage: list[bytes], cuts: list[int]
) -> None:
    noise = [g + b"\x00" for g in garbage]
    assume(not any(isinstance(x, Frame) for x in decode_stream(noise)))
    stream = b""
    for i, frame in enumerate(frames):
        stream += (noise[i] if i < len(noise) else b"") + encode_frame(frame)
    out = decode_stream(split(stream, cuts))
    assert [x for x in out if isinstance(x, Frame)] == [decode_frame(encode_frame(f)[:-1]) for f in frames]


@settings(max_examples=EXAMPLES * 3)
@given(frame=valid_frames, data=st.data())
def test_any_single_byte_corruption_is_detected(frame: Frame, data: st.DataObject) -> None:
    wire = encode_frame(frame)
    i = data.draw(st.integers(0, len(wire) - 2), label="position")  # any byte before the delimiter
    value = data.draw(bytes_.filter(lambda v: v != wire[i]), label="new value")
    corrupted = wire[:i] + bytes((value,)) + wire[i + 1 :]
    chunks = split(corrupted + b"\x00", data.draw(st.lists(st.integers(0, len(wire)), max_size=4), label="cuts"))
    out = decode_stream(chunks)
    assert not [x for x in out if isinstance(x, Frame)], f"corrupted frame accepted: {out}"
    assert [x for x in out if isinstance(x, FrameError)], "corruption went unreported"


@given(frames=st.lists(valid_frames, min_size=2, max_size=4), data=st.data())
def test_a_corrupted_byte_in_a_stream_never_yields_a_wrong_frame(frames: list[Frame], data: st.DataObject) -> None:
    wire = b"".join(encode_frame(f) for f in frames)
    i = data.draw(st.integers(0, len(wire) - 1), label="position")
    value = data.draw(bytes_.filter(lambda v: v != wire[i]), label="new value")
    corrupted = wire[:i] + bytes((value,)) + wire[i + 1 :] + b"\x00"
    originals = [decode_frame(encode_frame(f)[:-1]) for f in frames]
    got = [x for x in decode_stream([corrupted]) if isinstance(x, Frame)]
    # only intact frames come out, in order; a hit delimiter costs at most the two frames it separated
    it = iter(originals)
    assert all(any(g == o for o in it) for g in got), f"a frame that was never sent was accepted: {got}"
    assert len(got) >= len(frames) - 2


# ---- parse_payload --------------------------------------------------------------------------------
FIELDS = ["program", "channels", "channel", "amplitude_mA", "extra"]
any_number = json_ints | st.floats()  # includes NaN and infinities, as the decoder accepts them
field_values = st.one_of(
    json_values,
    any_number,
    st.lists(st.integers(-3, 20) | any_number | st.booleans(), max_size=18),
    st.sampled_from(["tens_hf", "ems_strength", "", "x" * 33]),
)
request_types = st.sampled_from([int(k) for k in MsgType]) | bytes_
near_requests = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=4)
valid_start = st.fixed_dictionaries(
    {
        "program": st.text(min_size=1, max_size=32),
        "channels": st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=16),
        "amplitude_mA": st.floats(allow_nan=False, allow_infinity=False) | json_ints,
    }
)


def check_parse(msg_type: int, payload: dict[str, Any]) -> None:
    try:
        kind, request = parse_payload(msg_type, payload)
    except PayloadError as exc:
        assert exc.code in (ErrorCode.UNKNOWN_COMMAND, ErrorCode.BAD_PAYLOAD)
        is_request = msg_type in {int(k) for k in REQUEST_SCHEMAS}
        assert (exc.code == ErrorCode.UNKNOWN_COMMAND) == (not is_request)
        assert exc.detail
        return
    assert kind == msg_type and isinstance(request, REQUEST_SCHEMAS[kind])
    assert set(request.model_fields_set) <= set(payload)  # nothing invented, nothing extra accepted
    assert set(payload) <= set(type(request).model_fields)
    if isinstance(request, StartRequest | SetAmplitudeRequest):
        assert type(request.amplitude_mA) is float and math.isfinite(request.amplitude_mA)
    if isinstance(request, StartRequest):
        assert 1 <= len(request.channels) <= 16 and all(type(c) is int for c in request.channels)
        assert 1 <= len(request.program) <= 32
    if isinstance(request, SetAmplitudeRequest):
        assert type(request.channel) is int
    if isinstance(request, StopRequest) and request.channels is not None:
        assert len(request.channels) <= 16 and all(type(c) is int for c in request.channels)


@given(msg_type=request_types, payload=json_objects | near_requests)
def test_parse_payload_validates_or_raises_payload_error(msg_type: int, payload: dict[str, Any]) -> None:
    check_parse(msg_type, payload)


@given(msg_type=st.sampled_from([MsgType.START, MsgType.SET_AMPLITUDE, MsgType.STOP]), payload=valid_start,
       drop=st.sampled_from([None, *FIELDS]), extra=st.none() | st.tuples(st.sampled_from(FIELDS), field_values))
def test_parse_payload_near_valid_requests(
    msg_type: int, payload: dict[str, Any], drop: str | None, extra: tuple[str, Any] | None
) -> None:
    payload = dict(payload)
    if msg_type == MsgType.SET_AMPLITUDE:
        payload = {"channel": payload["channels"][0], "amplitude_mA": payload["amplitude_mA"]}
    elif msg_type == MsgType.STOP:
        payload = {"channels": payload["channels"]}
    if drop is not None:
        payload.pop(drop, None)
    if extra is not None:
        payload[extra[0]] = extra[1]
    check_parse(msg_type, payload)


@pytest.mark.parametrize("sign", [1, -1])
def test_parse_payload_huge_integer_is_a_payload_error(sign: int) -> None:
    with pytest.raises(PayloadError) as info:
        parse_payload(MsgType.SET_AMPLITUDE, {"channel": 1, "amplitude_mA": sign * 10**400})
    assert info.value.code == ErrorCode.BAD_PAYLOAD

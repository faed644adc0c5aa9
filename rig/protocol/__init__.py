"""The stimulator command protocol, shared by the rig (client) and the simulated device (server).

See docs/protocol.md for the wire format. Layers:

- ``framing``: COBS frames delimited by 0x00, with version, sequence, type and CRC-16.
- ``messages``: message types, error codes and the JSON payload schema of each request.
"""

from rig.protocol.framing import (
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    Frame,
    FrameDecoder,
    FrameError,
    decode_frame,
    encode_frame,
)
from rig.protocol.messages import (
    REQUEST_SCHEMAS,
    ErrorCode,
    MsgType,
    error_payload,
    parse_payload,
    reply_type,
)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "PROTOCOL_VERSION",
    "REQUEST_SCHEMAS",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "MsgType",
    "decode_frame",
    "encode_frame",
    "error_payload",
    "parse_payload",
    "reply_type",
]

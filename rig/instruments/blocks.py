"""IEEE 488.2 definite-length block reader: ``#<n><length><data>\\n``, read by length, fast.

Binary data contains 0x0A, so the data is never read up to a termination character: the session's
termination character is switched off while the block is read and the data is fetched with as few
large VISA reads as the transport allows (usually one). The bytes pyvisa returns are handed back
as they are when one read delivered everything (no copy here), otherwise joined once.

Every malformed reply ends in an InstrumentError saying exactly what was wrong, and leaves no
stale bytes of that reply behind to poison the next query.
"""

from __future__ import annotations

from pyvisa.resources import MessageBasedResource

from rig.errors import InstrumentError
from rig.instruments.visa import describe_failure, discard_pending, raw_reads, read_raw_chunk, timeout_of

MAX_BLOCK_BYTES = 1 << 30  # refuse headers declaring more than 1 GiB
_PREVIEW_BYTES = 48
_EXPECTED = "an IEEE 488.2 definite-length block '#<n><length><data>' followed by '\\n'"


def read_definite_block(
    resource: MessageBasedResource, *, instrument: str, command: str, max_bytes: int = MAX_BLOCK_BYTES
) -> bytes | memoryview:
    """Read one definite-length block (the query has already been written) and its '\\n'.

    Returns exactly the declared data bytes. Raises InstrumentError on stray bytes before '#', a
    non-digit count or length, an indefinite '#0' block, a declared length above ``max_bytes``, a
    truncated block (timeout or connection closed mid-block), a missing terminator or an over-long
    block (bytes after the declared data or after the terminator).
    """
    reader = _BlockReader(resource, instrument, command)
    with raw_reads(resource):
        return reader.read_block(max_bytes)


def _preview(data: bytes, total: int | None = None) -> str:
    total = len(data) if total is None else total
    shown = repr(bytes(data[:_PREVIEW_BYTES]))
    return shown if total <= _PREVIEW_BYTES else f"{shown}... ({total} bytes)"


class _BlockReader:
    def __init__(self, resource: MessageBasedResource, instrument: str, command: str) -> None:
        self._resource = resource
        self._instrument = instrument
        self._command = command
        self._timeout_s = timeout_of(resource)

    def _error(self, problem: str, expected: str = _EXPECTED) -> InstrumentError:
        return InstrumentError(self._instrument, self._command, problem, expected)

    def _read(self, count: int) -> bytes:
        """One VISA read of at most ``count`` bytes (may return fewer)."""
        return read_raw_chunk(self._resource, count)

    def _collect(self, count: int) -> tuple[list[bytes], int, Exception | None]:
        """Read until ``count`` bytes arrived, the read fails or the message ends (an empty read)."""
        chunks: list[bytes] = []
        got = 0
        while got < count:
            try:
                chunk = self._read(count - got)
            except Exception as exc:  # timeout, connection closed: pyvisa and OSError alike
                return chunks, got, exc
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return chunks, got, None

    def _why_short(self, exc: Exception | None) -> str:
        if exc is None:
            return "the instrument ended the message"
        return describe_failure(exc, self._timeout_s)

    def _exactly(self, count: int, what: str, so_far: bytes = b"") -> bytes:
        """``count`` bytes, else InstrumentError saying how much of ``what`` arrived."""
        chunks, got, exc = self._collect(count)
        if got == count:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        received = so_far + b"".join(chunks)
        if received:
            problem = f"truncated {what}: got {_preview(received)} ({self._why_short(exc)})"
        else:
            problem = self._why_short(exc)
        raise self._error(problem) from exc

    def _stray(self, received: bytes, problem: str, expected: str) -> InstrumentError:
        """The error for a malformed reply, after dropping the rest of it (shown in the message)."""
        rest, rest_total = discard_pending(self._resource, preview_bytes=_PREVIEW_BYTES, device_clear=True)
        return self._error(f"{problem}: received {_preview(received + rest, len(received) + rest_total)}", expected)

    def read_block(self, max_bytes: int) -> bytes | memoryview:
        lead = self._exactly(1, "block header")
        if lead != b"#":
            raise self._stray(lead, "stray bytes before the block header", "'#' starting " + _EXPECTED)
        count_digit = self._exactly(1, "block header", b"#")
        if count_digit == b"0":
            raise self._stray(
                b"#0",
                "indefinite-length block '#0' refused",
                "a definite-length block '#<n><length>' with n 1-9",
            )
        if not b"1" <= count_digit <= b"9":
            raise self._stray(b"#" + count_digit, "non-digit count in the block header", "a digit 1-9 after '#'")
        n_digits = int(count_digit)
        length_field = self._exactly(n_digits, "block header", b"#" + count_digit)
        header = b"#" + count_digit + length_field
        if not length_field.isdigit():
            raise self._stray(
                header, "non-digit length in the block header", f"{n_digits} ASCII digits after '#{n_digits}'"
            )
        length = int(length_field)
        if length > max_bytes:
            raise self._stray(header, f"block declares {length} bytes, more than the {max_bytes}-byte limit", _EXPECTED)
        data = self._data(length)
        self._terminator(length)
        return data

    def _data(self, length: int) -> bytes | memoryview:
        if length == 0:
            return b""
        chunks, got, exc = self._collect(length)
        if got < length:
            raise self._error(f"truncated block: got {got} of {length} bytes ({self._why_short(exc)})") from exc
        if len(chunks) == 1:
            return chunks[0]  # the common case: one read delivered it all, no copy here
        return memoryview(b"".join(chunks))

    def _terminator(self, length: int) -> None:
        chunks, _got, exc = self._collect(1)
        if not chunks:
            raise self._error(
                f"missing terminator: no '\\n' after the {length} data bytes ({self._why_short(exc)})"
            ) from exc
        if chunks[0] != b"\n":
            raise self._stray(
                chunks[0],
                f"over-long block: more bytes than the {length} declared where the '\\n' terminator belongs",
                f"'\\n' right after the {length} declared data bytes",
            )
        extra, extra_total = discard_pending(self._resource, preview_bytes=_PREVIEW_BYTES)
        if extra_total:
            raise self._error(
                f"over-long block: {extra_total} unexpected bytes after the terminator: {_preview(extra, extra_total)}",
                f"nothing after the {length} declared data bytes and '\\n'",
            )

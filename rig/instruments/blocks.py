"""IEEE 488.2 definite-length block reader: ``#<n><length><data>\\n``, read by length, fast.

Binary data contains 0x0A, so the data is never read up to a termination character: the session's
termination character is switched off while the block is read (VI_ATTR_TERMCHAR_EN, a public VISA
attribute) and the data is fetched by count, in reads of at most ``READ_CHUNK_BYTES``. A block that
arrives in one read is handed back as pyvisa returned it (no copy here); a larger one is copied
chunk by chunk into one buffer allocated once, so a capture is never held in more than the
returned buffer plus one chunk (pyvisa-py's working copies of that chunk included), and each chunk
is one VISA read with its own timeout: a transfer that keeps flowing is never cut short by the I/O
timeout, a transfer that stalls is.

Every malformed reply ends in an InstrumentError naming the instrument and the command and saying
exactly what was wrong and what was expected; any of the reply still waiting (or arriving just
after) is dropped, so it cannot poison the next query.
"""

from __future__ import annotations

from pyvisa.resources import MessageBasedResource

from rig.errors import InstrumentError, StimrigError
from rig.instruments.visa import (
    describe_failure,
    discard_pending,
    raw_reads,
    read_raw_chunk_status,
    reads_are_local,
    timeout_of,
)

MAX_BLOCK_BYTES = 1 << 30  # refuse headers declaring more than 1 GiB
# One VISA read. pyvisa-py's socket session holds up to ~3 working copies of a read while it runs,
# so this bounds the transient memory above the returned buffer; large enough that the per-read
# overhead (a few attribute look-ups) is negligible against the 4 KiB recv() calls inside.
READ_CHUNK_BYTES = 1 << 18
# The data buffer is allocated up front only up to this size; beyond it, it grows as data arrives
# (a corrupted header declaring ~1 GB must not allocate and zero 1 GB before anything came in).
PREALLOCATE_MAX_BYTES = 64 << 20
_PREVIEW_BYTES = 48
_EXPECTED = "an IEEE 488.2 definite-length block '#<n><length><data>' followed by '\\n'"


def read_definite_block(
    resource: MessageBasedResource, *, instrument: str, command: str, max_bytes: int = MAX_BLOCK_BYTES
) -> bytes | memoryview:
    """Read one definite-length block (the query has already been written) and its '\\n'.

    Returns exactly the declared data bytes. Raises InstrumentError on stray bytes before '#', a
    non-digit count or length, an indefinite '#0' block, a declared length above ``max_bytes``, a
    truncated block (timeout or connection closed mid-block), a missing terminator, an over-long
    block (bytes after the declared data or after the terminator), or a session that cannot be
    read at all (closed).
    """
    try:
        reader = _BlockReader(resource, instrument, command)
        with raw_reads(resource):
            return reader.read_block(max_bytes)
    except StimrigError:
        raise
    except Exception as exc:  # e.g. InvalidSession: the resource was closed
        raise InstrumentError(instrument, command, describe_failure(exc, None), _EXPECTED) from exc


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
        self._ended = False  # the instrument signalled the end of its message (END)

    def _error(self, problem: str, expected: str = _EXPECTED) -> InstrumentError:
        return InstrumentError(self._instrument, self._command, problem, expected)

    def _read_some(self, count: int) -> tuple[bytes, Exception | None]:
        """One VISA read of at most ``count`` bytes: (bytes, None) -- b'' when the message ended --
        or (b'', the failure: timeout, connection closed, pyvisa and OSError alike). After a read on
        which the instrument signalled END (VXI-11, USBTMC, GPIB), the next returns b'' at once instead
        of waiting out the timeout for bytes that will not come."""
        if self._ended:
            return b"", None
        try:
            chunk, self._ended = read_raw_chunk_status(self._resource, count)
            return chunk, None
        except Exception as exc:
            return b"", exc

    def _why_short(self, exc: Exception | None) -> str:
        if exc is None:
            return "the instrument ended the message"
        return describe_failure(exc, self._timeout_s)

    def _truncated(self, problem: str, exc: Exception | None) -> InstrumentError:
        """The error for a reply that stopped early, after dropping whatever of it is waiting."""
        discard_pending(self._resource, device_clear=True)
        error = self._error(problem)
        error.__cause__ = exc
        return error

    def _exactly(self, count: int, what: str, so_far: bytes = b"") -> bytes:
        """``count`` (a few) bytes, else InstrumentError saying how much of ``what`` arrived."""
        chunks: list[bytes] = []
        got = 0
        exc: Exception | None = None
        while got < count:
            chunk, exc = self._read_some(count - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got == count:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        received = so_far + b"".join(chunks)
        if received:
            problem = f"truncated {what}: got {_preview(received)} ({self._why_short(exc)})"
        else:
            problem = self._why_short(exc)
        raise self._truncated(problem, exc)

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
        chunk, exc = self._read_some(min(length, READ_CHUNK_BYTES))
        if len(chunk) == length:
            return chunk  # the common small case: one read delivered it all, no copy here
        # The buffer is preallocated once a chunk's worth has arrived (at once, normally); until then
        # a reply that stalls (most likely truncated) only gets memory for what actually came.
        buffer = bytearray()
        got = 0
        while chunk:
            if len(buffer) < READ_CHUNK_BYTES <= got + len(chunk):
                grown = bytearray(min(length, PREALLOCATE_MAX_BYTES))
                grown[:got] = buffer
                buffer = grown
            buffer[got : got + len(chunk)] = chunk  # in place, or grows the buffer past the preallocation
            got += len(chunk)
            chunk = b""  # released before the next read: one chunk alive at a time
            if got >= length:
                break
            chunk, exc = self._read_some(min(length - got, READ_CHUNK_BYTES))
        if got < length:
            del buffer
            raise self._truncated(f"truncated block: got {got} of {length} bytes ({self._why_short(exc)})", exc)
        return memoryview(buffer)

    def _terminator(self, length: int) -> None:
        # Where the instrument marks the end of its message (END), ask for one byte more than the '\n':
        # a reply that goes on past it shows here instead of poisoning the next query.
        end, exc = self._read_some(1 if reads_are_local(self._resource) else 2)
        if len(end) > 1 or (end == b"\n" and not reads_are_local(self._resource) and not self._ended):
            raise self._stray(
                end,
                f"over-long block: bytes after the '\\n' that should end the {length} declared data bytes",
                f"'\\n' right after the {length} declared data bytes, and the end of the message",
            )
        if not end:
            raise self._truncated(
                f"missing terminator: no '\\n' after the {length} data bytes ({self._why_short(exc)})", exc
            )
        if end != b"\n":
            raise self._stray(
                end,
                f"over-long block: more bytes than the {length} declared where the '\\n' terminator belongs",
                f"'\\n' right after the {length} declared data bytes",
            )
        extra, extra_total = discard_pending(self._resource, preview_bytes=_PREVIEW_BYTES)
        if extra_total:
            raise self._error(
                f"over-long block: {extra_total} unexpected bytes after the terminator: {_preview(extra, extra_total)}",
                f"nothing after the {length} declared data bytes and '\\n'",
            )

"""Opening VISA resources, and a small SCPI session whose every failure is an InstrumentError.

Everything talks through pyvisa, so the same code drives a real instrument (any VISA library) and
an emulated one (pyvisa-py over loopback). No pyvisa exception escapes: a timeout, a refused or
closed connection, a bad resource string or a missing VISA library becomes an
:class:`~rig.errors.InstrumentError` naming the resource, the command and what was expected.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pyvisa
from pyvisa import constants
from pyvisa.resources import MessageBasedResource, SerialInstrument, TCPIPSocket

from rig.errors import InstrumentError, StimrigError
from rig.interfaces import InstrumentIdentity

_OPEN = "open"
_RESOURCE_EXAMPLES = "a VISA resource string such as TCPIP0::192.168.1.20::5025::SOCKET or TCPIP::host::inst0::INSTR"

_DISCARD_LIMIT_BYTES = 64 << 20
_IGNORED_WARNINGS = (
    constants.StatusCode.success_max_count_read,
    constants.StatusCode.success_termination_character_read,
    constants.StatusCode.success_device_not_present,
)

_managers: dict[str, pyvisa.ResourceManager] = {}
_managers_lock = threading.Lock()


def resource_manager(visa_library: str = "@py") -> pyvisa.ResourceManager:
    """The (cached) ResourceManager of one VISA library: '@py' for pyvisa-py, or a library path."""
    with _managers_lock:
        manager = _managers.get(visa_library)
        if manager is not None:
            try:
                _ = manager.session  # closed by someone else (pyvisa shares it per library)?
            except pyvisa.errors.InvalidSession:
                manager = None
        if manager is None:
            manager = pyvisa.ResourceManager(visa_library)
            _managers[visa_library] = manager
        return manager


def no_delay(resource: MessageBasedResource) -> None:
    """Switch Nagle's algorithm off on a LAN session (best effort). A query often follows writes that
    get no answer (set-up commands, :STARt/:STOP before :DATA?): with Nagle on, each write after an
    unanswered one waits for the peer's delayed ACK (~40 ms on Linux). VISA libraries
    offer VI_ATTR_TCPIP_NODELAY; pyvisa-py's raw-socket session does not, so its socket is set directly."""
    with suppress(Exception):
        resource.set_visa_attribute(constants.ResourceAttribute.tcpip_nodelay, constants.VI_TRUE)
        return
    with suppress(Exception):
        sock = resource.visalib.sessions[resource.session].interface  # type: ignore[attr-defined]
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def open_resource(
    resource: str,
    *,
    visa_library: str = "@py",
    timeout_s: float,
    read_termination: str | None = "\n",
    write_termination: str = "\n",
) -> MessageBasedResource:
    """Open ``resource`` through ``visa_library`` with the given I/O timeout and terminations.

    Raises InstrumentError (command 'open') when the library cannot be loaded, the resource string
    is invalid, or nothing answers at the address (including a refused raw-socket connection, which
    pyvisa-py itself only reports at the first write).
    """
    if not timeout_s > 0 or not math.isfinite(timeout_s):
        raise InstrumentError(resource, _OPEN, f"invalid timeout {timeout_s!r} s", "a positive number of seconds")
    try:
        manager = resource_manager(visa_library)
    except Exception as exc:  # LibraryError (OSError), ValueError 'Wrapper not found', ...
        raise InstrumentError(
            resource,
            _OPEN,
            f"VISA library {visa_library!r} could not be loaded: {type(exc).__name__}: {exc}",
            "'@py' (pyvisa-py) or the path of an installed VISA library",
        ) from exc
    timeout_ms = timeout_s * 1000.0
    try:
        opened = manager.open_resource(resource, open_timeout=math.ceil(timeout_ms))
    except pyvisa.errors.VisaIOError as exc:
        if exc.error_code == constants.StatusCode.error_invalid_resource_name:
            problem = "not a valid VISA resource string"
            expected = _RESOURCE_EXAMPLES
        else:
            problem = f"could not open: {describe_failure(exc, timeout_s)}"
            expected = "an instrument reachable at that address"
        raise InstrumentError(resource, _OPEN, problem, expected) from exc
    except Exception as exc:  # pyvisa-py raises bare Exception / OSError on connect failures
        raise InstrumentError(
            resource,
            _OPEN,
            f"could not open: {describe_failure(exc, timeout_s)}",
            "an instrument reachable at that address",
        ) from exc
    try:
        if not isinstance(opened, MessageBasedResource):
            raise InstrumentError(
                resource,
                _OPEN,
                f"is a {type(opened).__name__}, not a message-based instrument",
                _RESOURCE_EXAMPLES,
            )
        opened.timeout = timeout_ms
        opened.read_termination = read_termination  # type: ignore[assignment]
        opened.write_termination = write_termination
        if isinstance(opened, TCPIPSocket):
            _check_socket_connected(opened, resource)
        no_delay(opened)
    except BaseException:
        _close_quietly(opened)
        raise
    return opened


def _check_socket_connected(opened: MessageBasedResource, resource: str) -> None:
    """A raw socket "opens" in pyvisa-py even when the connection was refused; read to find out.

    Reading a raw socket sends nothing to the instrument (unlike VXI-11/USBTMC, where an unsolicited
    read queues a -420 'Query UNTERMINATED' error), so this probe is harmless on a real scope.
    """
    saved_ms = opened.timeout
    try:
        opened.timeout = 0  # VI_TMO_IMMEDIATE
        with opened.ignore_warning(constants.StatusCode.success_max_count_read):
            opened.visalib.read(opened.session, 1)  # any unsolicited byte is stale: dropped
    except pyvisa.errors.VisaIOError as exc:
        if exc.error_code != constants.StatusCode.error_timeout:
            raise InstrumentError(
                resource,
                _OPEN,
                f"connection failed: {describe_failure(exc, None)}",
                "an instrument listening there",
            ) from exc
    except Exception as exc:  # ConnectionRefusedError and friends
        raise InstrumentError(
            resource,
            _OPEN,
            f"connection failed: {describe_failure(exc, None)} (nothing listening at that address/port?)",
            "an instrument listening at that address and port",
        ) from exc
    finally:
        opened.timeout = saved_ms


def _close_quietly(opened: object) -> None:
    with suppress(Exception):
        opened.close()  # type: ignore[attr-defined]


def timeout_of(resource: MessageBasedResource) -> float | None:
    """The resource's I/O timeout in seconds (None: infinite)."""
    timeout_ms = resource.timeout
    if timeout_ms is None or math.isinf(timeout_ms):
        return None
    return float(timeout_ms) / 1000.0


def describe_failure(exc: BaseException, timeout_s: float | None) -> str:
    """One line saying what a pyvisa / socket failure means."""
    if isinstance(exc, pyvisa.errors.VisaIOError):
        if exc.error_code == constants.StatusCode.error_timeout:
            within = f" within {timeout_s:g} s" if timeout_s is not None else ""
            return f"no reply{within} (VI_ERROR_TMO)"
        return f"VISA error {exc.abbreviation}: {exc.description}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused ({exc})"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return f"connection closed by the instrument ({type(exc).__name__}: {exc})"
    if isinstance(exc, pyvisa.errors.InvalidSession):
        return "the VISA session is closed"
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def raw_reads(resource: MessageBasedResource) -> Iterator[None]:
    """Reads end by count only: no termination character; short reads return what has arrived.

    VI_ATTR_SUPPRESS_END_EN off lets pyvisa-py hand back a partial read instead of dropping it in
    a timeout, so a truncated block can say how many bytes did arrive. Not every session supports
    it (e.g. pyvisa-py VXI-11): best effort.
    """
    saved: list[tuple[constants.ResourceAttribute, object]] = []
    for attribute, value in (
        (constants.ResourceAttribute.termchar_enabled, False),
        (constants.ResourceAttribute.suppress_end_enabled, False),
    ):
        try:
            previous = resource.get_visa_attribute(attribute)
            resource.set_visa_attribute(attribute, value)
        except Exception:  # unsupported attribute on this session type
            continue
        saved.append((attribute, previous))
    try:
        yield
    finally:
        for attribute, previous in reversed(saved):
            with suppress(Exception):  # a dead session cannot be restored; later calls will say so
                resource.set_visa_attribute(attribute, previous)


def read_raw_chunk(resource: MessageBasedResource, count: int) -> bytes:
    """One VISA read of at most ``count`` bytes (fewer when the read ends early); pyvisa errors pass."""
    return read_raw_chunk_status(resource, count)[0]


def read_raw_chunk_status(resource: MessageBasedResource, count: int) -> tuple[bytes, bool]:
    """One VISA read of at most ``count`` bytes, and whether the instrument ended its message with it
    (VXI-11 / USBTMC / GPIB END: the read stopped before ``count`` with success). Raw sockets and serial
    ports have no END: False there."""
    with resource.ignore_warning(*_IGNORED_WARNINGS):
        chunk, status = resource.visalib.read(resource.session, count)
    ended = not reads_are_local(resource) and status == constants.StatusCode.success and len(chunk) < count
    return chunk, ended


def reads_are_local(resource: MessageBasedResource) -> bool:
    """Whether a read only takes bytes already sent (raw socket, serial), so it is free to probe.

    On VXI-11 / USBTMC / GPIB a read asks the instrument to talk; with nothing queued a SCPI
    instrument records -420 'Query UNTERMINATED', so those sessions are never read speculatively.
    """
    return isinstance(resource, (TCPIPSocket, SerialInstrument))


def discard_pending(
    resource: MessageBasedResource, *, preview_bytes: int = 0, device_clear: bool = False
) -> tuple[bytes, int]:
    """Drop input that is already waiting (bounded, never blocks); returns its first bytes and size.

    Only where reads are local (see :func:`reads_are_local`); elsewhere nothing is read, and with
    ``device_clear`` a VISA clear empties the instrument's output queue instead. Unlike
    ``resource.clear()`` on a raw socket this returns on a closed connection (pyvisa-py's clear()
    spins forever there).
    """
    if not reads_are_local(resource):
        if device_clear:
            with suppress(Exception):
                resource.clear()
        return b"", 0
    preview = b""
    total = 0
    saved_ms = resource.timeout
    with raw_reads(resource):
        try:
            resource.timeout = 0  # VI_TMO_IMMEDIATE
            while total < _DISCARD_LIMIT_BYTES:
                chunk = read_raw_chunk(resource, 1 << 16)
                if not chunk:
                    break
                if len(preview) < preview_bytes:
                    preview += chunk[: preview_bytes - len(preview)]
                total += len(chunk)
        except Exception:
            pass  # nothing more waiting (timeout), or the connection is gone
        finally:
            with suppress(Exception):
                resource.timeout = saved_ms
    return preview, total


IDN_EXPECTED = "an identification 'manufacturer,model,serial,firmware'"


def parse_identity(instrument: str, reply: str) -> InstrumentIdentity:
    try:
        return InstrumentIdentity.from_idn(reply)
    except ValueError as exc:
        raise InstrumentError(instrument, "*IDN?", f"unparsable reply {reply!r}", IDN_EXPECTED) from exc


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (or the pyvisa error it wraps) is a VISA timeout."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, pyvisa.errors.VisaIOError) and cause.error_code == constants.StatusCode.error_timeout:
            return True
        cause = cause.__cause__
    return False


@contextmanager
def visa_errors(
    instrument: str, command: str, expected: str, *, timeout_s: float | None = None, problem: str = ""
) -> Iterator[None]:
    """Turn any pyvisa / socket exception raised inside into an InstrumentError."""
    try:
        yield
    except StimrigError:
        raise
    except Exception as exc:  # pyvisa-py also raises bare OSError / Exception subclasses
        reason = describe_failure(exc, timeout_s)
        raise InstrumentError(instrument, command, f"{problem}: {reason}" if problem else reason, expected) from exc


class ScpiSession:
    """Line-oriented SCPI over one opened pyvisa resource; every failure is an InstrumentError."""

    def __init__(self, resource: MessageBasedResource, name: str) -> None:
        self._resource = resource
        self._name = name
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def resource(self) -> MessageBasedResource:
        return self._resource

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def timeout_s(self) -> float | None:
        return timeout_of(self._resource)

    def _check_open(self, command: str) -> None:
        if self._closed:
            raise InstrumentError(self._name, command, "the session is closed", "an open instrument session")

    def write(self, command: str, *, expected: str = "the instrument to accept the command") -> None:
        self._check_open(command)
        with visa_errors(self._name, command, expected, timeout_s=self.timeout_s, problem="write failed"):
            self._resource.write(command)

    def read_line(self, *, command: str, expected: str) -> str:
        """Read one reply line (termination stripped, whitespace trimmed) to ``command``."""
        self._check_open(command)
        with visa_errors(self._name, command, expected, timeout_s=self.timeout_s):
            return self._resource.read().strip()

    def query(self, command: str, *, expected: str) -> str:
        self.write(command, expected=expected)
        return self.read_line(command=command, expected=expected)

    def identify(self) -> tuple[str, InstrumentIdentity]:
        """``*IDN?``: the reply as sent, and parsed (4 fields, manufacturer and model non-empty)."""
        reply = self.query("*IDN?", expected=IDN_EXPECTED)
        return reply, parse_identity(self._name, reply)

    @contextmanager
    def timeout(self, seconds: float) -> Iterator[None]:
        """Temporarily use another I/O timeout."""
        saved_ms = self._resource.timeout
        self._resource.timeout = seconds * 1000.0
        try:
            yield
        finally:
            if not self._closed:
                self._resource.timeout = saved_ms

    def device_clear(self) -> None:
        """Abort what the instrument is doing and drop pending input.

        VISA clear (a device clear) on VXI-11/USBTMC/GPIB; on a raw socket, where a device clear
        does not exist, only the input waiting on our side is dropped.
        """
        self._check_open("viClear")
        if reads_are_local(self._resource):
            discard_pending(self._resource)
            return
        with visa_errors(self._name, "viClear", "the instrument to accept a device clear", timeout_s=self.timeout_s):
            self._resource.clear()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _close_quietly(self._resource)

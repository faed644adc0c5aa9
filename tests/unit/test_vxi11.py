"""VXI-11 (``TCPIP0::host::inst0::INSTR``) for the emulated instruments, through pyvisa-py's own client.

Everything goes over loopback sockets with the portmapper on a free port (pointed at with
rig.instruments.vxi11_port): a small fake SCPI session, the emulated Keysight scope (also with the rig's
driver and block reader) and the emulated attenuator.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import numpy as np
import pytest
import pyvisa
from pyvisa import constants
from pyvisa.resources import MessageBasedResource
from pyvisa_py.protocols import rpc, vxi11

from rig.config.bench import ScopeConfig
from rig.errors import InstrumentError
from rig.instruments import KeysightInfiniiVision, open_scope
from rig.instruments.blocks import read_definite_block
from rig.instruments.visa import open_resource
from rig.instruments.vxi11_port import portmapper_port, portmapper_port_set_to, use_portmapper_port
from rig.interfaces import AcquisitionSetup, ChannelSetup, TriggerSetup
from simulator.instruments.attenuator import RcdatAttenuator
from simulator.instruments.attenuator_model import load_attenuator_model
from simulator.instruments.keysight import KeysightInfiniiVision as EmulatedScope
from simulator.instruments.socket_server import ScpiSocketServer
from simulator.instruments.vxi11 import Vxi11BindError, Vxi11Server, frame_record

TIMEOUT_MS = 5000
IDN = b"FAKE INSTRUMENTS,ECHO-1,0001,1.0"


def _block(n: int, seed: int) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    digits = str(len(data)).encode()
    return b"#" + str(len(digits)).encode() + digits + data + b"\n"


BLOCK = _block(5_000_000, 1)  # ~19,500 bytes 0x0A in the data
BLOCK_DATA = BLOCK[2 + int(BLOCK[1:2]) : -1]


@dataclass
class FakeSession:
    """A tiny SCPI instrument: *IDN?, ECHO? <text>, BLOCK? (5 MB, many 0x0A), SILENT? (never answers)."""

    stb: int = 0
    clears: int = 0
    triggers: int = 0
    closed: bool = False
    lines: list[bytes] = field(default_factory=list)

    def handle(self, line: bytes) -> bytes:
        self.lines.append(line)
        if line == b"*IDN?":
            return IDN + b"\n"
        if line.startswith(b"ECHO? "):
            return line[6:] + b"\n"
        if line == b"BLOCK?":
            return BLOCK
        if line == b"TWO?":
            return b"a\nb\n"
        if line == b"SHORT?":  # declares 10 bytes, sends 3, ends its message
            return b"#210abc\n"
        if line == b"LONG?":  # declares 3 bytes, sends more after the terminator
            return b"#13abc\nEXTRA\n"
        return b""  # SILENT? and commands

    def clear(self) -> None:
        self.clears += 1

    def trigger(self) -> None:
        self.triggers += 1

    def status_byte(self) -> int:
        return self.stb

    def close(self) -> None:
        self.closed = True


class Fake:
    """A session factory remembering the sessions it made."""

    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []

    def __call__(self) -> FakeSession:
        session = FakeSession()
        self.sessions.append(session)
        return session


@pytest.fixture(scope="module")
def rm() -> pyvisa.ResourceManager:
    return pyvisa.ResourceManager("@py")  # shared per library by pyvisa: never closed here


@contextmanager
def serving(factory: object, **kwargs: object) -> Iterator[Vxi11Server]:
    """A started Vxi11Server (portmapper on a free port, pyvisa-py pointed at it); stopped afterwards."""
    server = Vxi11Server(factory, portmapper_port=0, **kwargs).start()  # type: ignore[arg-type]
    try:
        with portmapper_port_set_to(server.portmapper_port):
            yield server
    finally:
        server.stop()


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
def server(fake: Fake) -> Iterator[Vxi11Server]:
    with serving(fake) as started:
        yield started


def _open(rm: pyvisa.ResourceManager, server: Vxi11Server, timeout_ms: float = TIMEOUT_MS) -> MessageBasedResource:
    resource = rm.open_resource(server.resource(), open_timeout=TIMEOUT_MS)
    assert isinstance(resource, MessageBasedResource)
    resource.timeout = timeout_ms
    resource.read_termination = "\n"
    resource.write_termination = "\n"
    return resource


@pytest.fixture
def inst(rm: pyvisa.ResourceManager, server: Vxi11Server) -> Iterator[MessageBasedResource]:
    resource = _open(rm, server)
    yield resource
    resource.close()


class CoreClient(vxi11.CoreClient):  # type: ignore[misc]
    """pyvisa-py's low-level VXI-11 client, for what pyvisa does not expose (flags, raw procedures)."""

    def call(self, proc: int) -> object:
        return self.make_call(proc, None, None, None)


class AbortClient(rpc.RawTCPClient):  # type: ignore[misc]
    def __init__(self, host: str, port: int) -> None:
        self.packer = vxi11.Vxi11Packer()
        self.unpacker = vxi11.Vxi11Unpacker(b"")
        super().__init__(host, vxi11.DEVICE_ASYNC_PROG, vxi11.DEVICE_ASYNC_VERS, port)

    def device_abort(self, link: int) -> int:
        return int(
            self.make_call(vxi11.DEVICE_ABORT, link, self.packer.pack_device_link, self.unpacker.unpack_device_error)
        )


def _link(client: CoreClient) -> int:
    error, link, _abort_port, _max_recv = client.create_link(1, 0, 0, "inst0")
    assert error == 0
    return int(link)


# ------------------------------------------------------------------------------ the basics


def test_resource_string_ports_and_portmapper(server: Vxi11Server) -> None:
    assert server.resource() == "TCPIP0::127.0.0.1::inst0::INSTR"
    assert server.resource("inst1") == "TCPIP0::127.0.0.1::inst1::INSTR"
    assert portmapper_port() == server.portmapper_port != 111
    pmap = rpc.TCPPortMapperClient("127.0.0.1")
    try:
        pmap.call_0()  # PMAPPROC_NULL
        tcp = rpc.IPPROTO_TCP
        assert pmap.get_port((vxi11.DEVICE_CORE_PROG, vxi11.DEVICE_CORE_VERS, tcp, 0)) == server.port
        assert pmap.get_port((vxi11.DEVICE_ASYNC_PROG, vxi11.DEVICE_ASYNC_VERS, tcp, 0)) == server.abort_port
        assert pmap.get_port((vxi11.DEVICE_CORE_PROG, vxi11.DEVICE_CORE_VERS, rpc.IPPROTO_UDP, 0)) == 0
        assert pmap.get_port((0x0607B1, 1, tcp, 0)) == 0  # no interrupt channel
        assert sorted(pmap.dump()) == sorted(
            [
                (100000, 2, tcp, server.portmapper_port),
                (vxi11.DEVICE_CORE_PROG, 1, tcp, server.port),
                (vxi11.DEVICE_ASYNC_PROG, 1, tcp, server.abort_port),
            ]
        )
        with pytest.raises(rpc.RPCUnpackError, match="procedure_unavailable"):
            pmap.make_call(1, (1, 1, 6, 1), pmap.packer.pack_mapping, pmap.unpacker.unpack_uint)  # SET
    finally:
        pmap.close()


def test_idn_echo_and_newline_separated_messages(inst: MessageBasedResource, fake: Fake) -> None:
    assert inst.query("*IDN?") == IDN.decode()
    assert inst.query("ECHO? hello world") == "hello world"
    inst.write("*IDN?\nECHO? second")  # two program messages in one END-terminated write
    assert inst.read() == IDN.decode()
    assert inst.read() == "second"
    assert fake.sessions[0].lines[-2:] == [b"*IDN?", b"ECHO? second"]


def test_reads_end_on_the_termination_character_only_when_asked(inst: MessageBasedResource) -> None:
    inst.write("TWO?")
    assert inst.read_raw() == b"a\n"  # TERMCHRSET: the read stops after '\n' (reason CHR)
    assert inst.read_raw() == b"b\n"  # ... and the rest of the response follows (reason END)
    inst.read_termination = None  # type: ignore[assignment]
    inst.write("TWO?")
    assert inst.read_raw() == b"a\nb\n"  # no termination character: the whole response message


def test_small_reads_carry_the_request_count(inst: MessageBasedResource) -> None:
    inst.write("ECHO? 0123456789")
    with inst.ignore_warning(constants.StatusCode.success_max_count_read):
        chunk, status = inst.visalib.read(inst.session, 4)
        assert (chunk, status) == (b"0123", constants.StatusCode.success_max_count_read)
        chunk, status = inst.visalib.read(inst.session, 100)
    assert (chunk, status) == (b"456789\n", constants.StatusCode.success)


def test_writes_longer_than_max_recv_size_are_joined_until_end(rm: pyvisa.ResourceManager, fake: Fake) -> None:
    with serving(fake, max_recv_size=16) as server:
        inst = _open(rm, server)
        text = "x" * 200 + "y"
        assert inst.query("ECHO? " + text) == text  # 13 device_writes, END on the last
        inst.close()


def test_a_5_mb_block_with_many_newlines_arrives_intact(inst: MessageBasedResource) -> None:
    assert BLOCK_DATA.count(b"\n") > 10_000
    inst.read_termination = None  # type: ignore[assignment]
    inst.write("BLOCK?")
    assert inst.read_raw() == BLOCK
    values = inst.query_binary_values("BLOCK?", datatype="B", container=bytes)
    assert values == BLOCK_DATA
    assert inst.query("*IDN?").strip() == IDN.decode()  # nothing of the block left behind


def test_replies_framed_in_many_fragments_arrive_intact(rm: pyvisa.ResourceManager, fake: Fake) -> None:
    with serving(fake, fragment_size=1000, max_recv_size=1 << 24) as server:
        inst = _open(rm, server)
        inst.read_termination = None  # type: ignore[assignment]
        inst.write("BLOCK?")
        # one device_read (5,000 record fragments); one byte more than the block, or pyvisa-py reports
        # "count reached" (before END) and pyvisa's read_raw reads on, into a timeout
        assert inst.read_raw(len(BLOCK) + 1) == BLOCK
        inst.close()


def test_frame_record_fragments() -> None:
    out = frame_record([b"abc", memoryview(b"defgh"), bytearray(b"i")], 4)
    assert bytes(out) == b"\0\0\0\x04abcd" + b"\0\0\0\x04efgh" + b"\x80\0\0\x01i"
    assert bytes(frame_record([], 4)) == b"\x80\0\0\0"
    assert bytes(frame_record([b"abcd"], 4)) == b"\x80\0\0\x04abcd"


def test_the_rig_block_reader_over_instr(server: Vxi11Server) -> None:
    resource = open_resource(server.resource(), timeout_s=5)  # as the rig opens it: read_termination '\n'
    try:
        resource.write("BLOCK?")
        data = read_definite_block(resource, instrument="fake", command="BLOCK?")
        assert bytes(data) == BLOCK_DATA
        assert resource.query("*IDN?") == IDN.decode()
    finally:
        resource.close()


@pytest.mark.parametrize(("query", "problem"), [
    ("SHORT?", "truncated block: got 4 of 10 bytes (the instrument ended the message)"),
    ("LONG?", "over-long block: bytes after the '\\n'"),
])
def test_the_block_reader_sees_where_an_instr_message_ends(server: Vxi11Server, query: str, problem: str) -> None:
    """Over VXI-11 a reply ends with END: a short block is reported at once (not after the timeout), and
    bytes after the terminator are caught instead of answering the next query."""
    resource = open_resource(server.resource(), timeout_s=5)
    try:
        resource.write(query)
        started = time.perf_counter()
        with pytest.raises(InstrumentError, match=re.escape(problem)):
            read_definite_block(resource, instrument="fake", command=query)
        assert time.perf_counter() - started < 1.0
        assert resource.query("*IDN?") == IDN.decode()
    finally:
        resource.close()


# ------------------------------------------------------------------------------ timeouts, clear, stb


def test_a_query_without_reply_times_out_then_the_link_still_works(inst: MessageBasedResource) -> None:
    inst.timeout = 300
    start = time.monotonic()
    with pytest.raises(pyvisa.VisaIOError) as info:
        inst.query("SILENT?")
    elapsed = time.monotonic() - start
    assert info.value.error_code == constants.StatusCode.error_timeout
    assert 0.25 < elapsed < 1.0  # the server's I/O timeout, not pyvisa-py's RPC timeout (+1 s)
    inst.timeout = TIMEOUT_MS
    assert inst.query("*IDN?") == IDN.decode()


def test_device_clear_drops_pending_output_and_clears_the_session(inst: MessageBasedResource, fake: Fake) -> None:
    inst.write("ECHO? stale")
    inst.clear()
    assert fake.sessions[0].clears == 1
    inst.timeout = 100
    with pytest.raises(pyvisa.VisaIOError):
        inst.read()
    inst.timeout = TIMEOUT_MS
    assert inst.query("ECHO? fresh") == "fresh"


def test_read_stb_reports_the_session_status_byte_and_mav(inst: MessageBasedResource, fake: Fake) -> None:
    fake.sessions[0].stb = 0x24
    assert inst.read_stb() == 0x24
    inst.write("*IDN?")
    assert inst.read_stb() == 0x24 | 0x10  # MAV while the reply waits
    inst.read()
    assert inst.read_stb() == 0x24


def test_trigger_calls_the_session(inst: MessageBasedResource, fake: Fake) -> None:
    inst.assert_trigger()
    assert fake.sessions[0].triggers == 1


# ------------------------------------------------------------------------------ links and locks


def test_lock_contention_between_two_links(rm: pyvisa.ResourceManager, server: Vxi11Server) -> None:
    a, b = _open(rm, server), _open(rm, server)
    try:
        a.lock_excl()
        a.lock_excl()  # again on the holding link: fine
        with pytest.raises(pyvisa.VisaIOError) as info:
            b.lock_excl()
        assert info.value.error_code == constants.StatusCode.error_resource_locked
        with pytest.raises(pyvisa.VisaIOError):
            b.query("*IDN?")  # pyvisa-py writes without WAITLOCK: error 11 at once (VI_ERROR_IO)
        assert a.query("ECHO? mine") == "mine"
        with pytest.raises(pyvisa.VisaIOError) as info:
            b.unlock()
        assert info.value.error_code == constants.StatusCode.error_session_not_locked
        a.unlock()
        assert b.query("ECHO? now mine") == "now mine"
        b.lock_excl()
    finally:
        b.close()  # destroying the link releases its lock
    try:
        a.lock_excl()
        assert a.query("ECHO? free again") == "free again"
        a.unlock()
    finally:
        a.close()


def test_waitlock_waits_for_the_lock_and_abort_ends_a_wait(server: Vxi11Server) -> None:
    holder, waiter = CoreClient("127.0.0.1"), CoreClient("127.0.0.1")
    abort = AbortClient("127.0.0.1", server.abort_port)
    try:
        held, waiting = _link(holder), _link(waiter)
        assert holder.device_lock(held, 0, 0) == 0
        links = server.link_count
        assert waiter.create_link(2, 1, 100, "inst0")[0] == 11  # lockDevice: waits 100 ms, then refused
        assert server.link_count == links
        assert waiter.device_lock(waiting, 0, 1000) == 11  # no WAITLOCK: at once
        assert waiter.device_lock(waiting, 1, 100) == 11  # WAITLOCK, 100 ms: still held
        releaser = threading.Timer(0.2, holder.device_unlock, args=(held,))
        releaser.start()
        start = time.monotonic()
        assert waiter.device_lock(waiting, 1, 5000) == 0  # WAITLOCK: obtained once released
        assert 0.15 < time.monotonic() - start < 2.0
        releaser.join()
        assert holder.device_write(held, 1000, 0, 8, b"ECHO? x\n") == (11, 0)
        assert waiter.device_unlock(waiting) == 0
        assert holder.device_unlock(held) == 12

        aborter = threading.Timer(0.2, abort.device_abort, args=(waiting,))
        aborter.start()
        start = time.monotonic()
        error, _reason, _data = waiter.device_read(waiting, 100, 5000, 0, 0, 0)  # nothing to read
        assert error == 23 and time.monotonic() - start < 2.0
        aborter.join()
        assert abort.device_abort(9999) == 4
    finally:
        for client in (holder, waiter, abort):
            client.close()


def test_errors_for_unknown_links_and_procedures(server: Vxi11Server) -> None:
    client = CoreClient("127.0.0.1")
    try:
        assert client.device_write(9999, 1000, 0, 8, b"*IDN?\n") == (4, 0)
        assert client.device_read(9999, 100, 1000, 0, 0, 0)[0] == 4
        assert client.device_read_stb(9999, 0, 0, 1000) == (4, 0)
        assert client.destroy_link(9999) == 4
        assert client.create_link(1, 0, 0, "nosuchdevice")[0] == 3
        link = _link(client)
        assert client.device_remote(link, 0, 0, 1000) == 0
        assert client.device_local(link, 0, 0, 1000) == 0
        assert client.device_enable_srq(link, False, b"") == 0
        assert client.device_enable_srq(link, True, b"h") == 8  # no interrupt channel
        assert client.make_call(vxi11.DESTROY_INTR_CHAN, None, None, client.unpacker.unpack_device_error) == 6
        assert client.device_docmd(link, 0, 1000, 0, 0x20000, True, 1, b"x") == (8, b"")
        with pytest.raises(rpc.RPCUnpackError, match="procedure_unavailable"):
            client.call(99)
        assert client.destroy_link(link) == 0
        assert client.device_write(link, 1000, 0, 8, b"*IDN?\n") == (4, 0)  # destroyed
    finally:
        client.close()


def test_rpc_level_errors(server: Vxi11Server) -> None:
    def raw_client(program: int, version: int, port: int) -> rpc.RawTCPClient:
        client = rpc.RawTCPClient("127.0.0.1", program, version, port)
        client.packer, client.unpacker = vxi11.Vxi11Packer(), vxi11.Vxi11Unpacker(b"")
        return client

    cases = (
        (vxi11.DEVICE_CORE_PROG, 2, server.port, "program_mismatch"),
        (12345, 1, server.port, "program_unavailable"),
        (vxi11.DEVICE_CORE_PROG, 1, server.portmapper_port, "program_unavailable"),
    )
    for program, version, port, expected in cases:
        client = raw_client(program, version, port)
        try:
            with pytest.raises(rpc.RPCUnpackError, match=expected):
                client.call_0()
        finally:
            client.close()
    client = raw_client(vxi11.DEVICE_CORE_PROG, 1, server.port)
    try:
        client.call_0()  # NULL
        with pytest.raises(rpc.RPCGarbageArgs):  # device_write parameters cut short
            args = (1, 1000)  # pyvisa-py takes its RPC timeout from args[1]; only the link id is sent
            pack_link_only = lambda a: client.packer.pack_int(a[0])  # noqa: E731
            client.make_call(vxi11.DEVICE_WRITE, args, pack_link_only, client.unpacker.unpack_int)
        assert client.make_call(vxi11.DESTROY_LINK, 77, client.packer.pack_int, client.unpacker.unpack_int) == 4
    finally:
        client.close()


def test_links_belong_to_their_connection(server: Vxi11Server) -> None:
    a, b = CoreClient("127.0.0.1"), CoreClient("127.0.0.1")
    try:
        link = _link(a)
        assert b.device_write(link, 1000, 0, 8, b"*IDN?\n") == (4, 0)
        assert server.link_count == 1
    finally:
        a.close()
        b.close()
    deadline = time.monotonic() + 2
    while server.link_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.link_count == 0  # a closed connection destroys its links


def test_two_clients_at_once(rm: pyvisa.ResourceManager, server: Vxi11Server, fake: Fake) -> None:
    failures: list[str] = []

    def client(name: str) -> None:
        inst = _open(rm, server)
        try:
            for i in range(100):
                reply = inst.query(f"ECHO? {name}-{i}")
                if reply != f"{name}-{i}":
                    failures.append(reply)
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            inst.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert len(fake.sessions) == 3 and all(s.closed for s in fake.sessions)


def test_stop_closes_links(rm: pyvisa.ResourceManager, fake: Fake) -> None:
    server = Vxi11Server(fake, portmapper_port=0).start()
    with portmapper_port_set_to(server.portmapper_port):
        inst = _open(rm, server, timeout_ms=300)
    assert inst.query("*IDN?") == IDN.decode()
    assert server.link_count == 1
    server.stop()
    assert server.link_count == 0 and fake.sessions[0].closed
    with pytest.raises(Exception):  # noqa: B017 - pyvisa-py reports a dead VXI-11 connection in several ways
        inst.query("*IDN?")
    # pyvisa-py's destroy_link would wait out its 5 s RPC timeout on the dead connection: make it fail fast
    with suppress(OSError):  # already reset
        inst.visalib.sessions[inst.session].interface.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
    start = time.monotonic()
    inst.close()
    assert time.monotonic() - start < 1.0


def test_the_server_wide_lock_is_shared_with_the_raw_socket_server(rm: pyvisa.ResourceManager, fake: Fake) -> None:
    raw = ScpiSocketServer(fake, port=0).start()
    try:
        with serving(fake, lock=raw.lock) as server:
            assert server.lock is raw.lock
            inst = _open(rm, server, timeout_ms=300)
            with raw.lock:  # a raw-socket program message in progress
                with pytest.raises(pyvisa.VisaIOError) as info:
                    inst.write("ECHO? held")
                assert info.value.error_code == constants.StatusCode.error_timeout
            assert inst.query("ECHO? free") == "free"
            inst.close()
    finally:
        raw.stop()


def test_a_busy_portmapper_port_is_a_clear_error(fake: Fake) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    try:
        with pytest.raises(Vxi11BindError, match=rf"portmapper to 127\.0\.0\.1:{busy}.*portmapper_port"):
            Vxi11Server(fake, portmapper_port=busy).start()
    finally:
        blocker.close()


def test_use_portmapper_port_sets_pyvisa_py_global() -> None:
    saved = rpc.PMAP_PORT
    try:
        use_portmapper_port(4111)
        assert rpc.PMAP_PORT == 4111 == portmapper_port()
        with portmapper_port_set_to(5111):
            assert rpc.PMAP_PORT == 5111
        assert rpc.PMAP_PORT == 4111
        for bad in (0, 70000, -1):
            with pytest.raises(ValueError):
                use_portmapper_port(bad)
    finally:
        rpc.PMAP_PORT = saved


# ------------------------------------------------------------------------------ the emulated instruments


PULSE_V, PERIOD_S, WIDTH_S, FIRST_EDGE_S = 3.0, 1e-3, 2e-4, 0.5e-3


@dataclass
class Pulses:
    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        t = t0_s + np.arange(n) * dt_s
        high = (np.mod(t - FIRST_EDGE_S, PERIOD_S) < WIDTH_S) & (t >= FIRST_EDGE_S)
        return np.where(high, PULSE_V, 0.0)


@dataclass
class Bench:
    """A ScopeHost: a virtual clock that moves only when asked, pulses on channel 1, 10:1 probes."""

    t_s: float = 0.0

    def now(self) -> float:
        return self.t_s

    def advance_to(self, t_s: float) -> None:
        self.t_s = max(self.t_s, t_s)

    def signal(self, channel: int) -> Pulses | None:
        return Pulses() if channel == 1 else None

    def probe_attenuation(self, channel: int) -> float:
        return 10.0

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng(sum(stream.encode()))


@pytest.fixture
def scope_servers() -> Iterator[tuple[ScpiSocketServer, Vxi11Server]]:
    instrument = EmulatedScope(Bench(), search_horizon_s=0.05)
    raw = ScpiSocketServer(instrument.session, port=0).start()
    try:
        with serving(instrument.session, lock=raw.lock) as server:
            yield raw, server
    finally:
        raw.stop()


def test_emulated_scope_idn_stb_and_waveform_block(
    rm: pyvisa.ResourceManager, scope_servers: tuple[ScpiSocketServer, Vxi11Server]
) -> None:
    raw, server = scope_servers
    socket_idn = rm.open_resource(raw.resource(), read_termination="\n", write_termination="\n")
    assert isinstance(socket_idn, MessageBasedResource)
    inst = _open(rm, server)
    try:
        assert inst.query("*IDN?") == socket_idn.query("*IDN?")
        assert inst.query("*IDN?").startswith("KEYSIGHT TECHNOLOGIES,DSO-X 3034T,")
        inst.write("*CLS;*ESE 32")
        assert inst.read_stb() & 0x20 == 0
        inst.write(":NO:SUCH:COMMand")  # command error: ESR bit 5, enabled by *ESE: ESB in the status byte
        assert inst.read_stb() & 0x20
        assert int(inst.query("*STB?")) == 0x20
        inst.write("*CLS")
        assert inst.read_stb() == 0
        inst.write(":TIMebase:SCALe 1e-4;:WAVeform:FORMat BYTE;:WAVeform:POINts:MODE RAW;:WAVeform:POINts MAX")
        inst.write(":DIGitize CHANnel1")
        points = int(inst.query(":WAVeform:POINts?"))
        data = inst.query_binary_values(":WAVeform:DATA?", datatype="B", container=bytes)
        assert points > 1000 and len(data) == points
        assert inst.query(":SYSTem:ERRor?") == '+0,"No error"'
    finally:
        inst.close()
        socket_idn.close()


def _setup(level_V: float, points: int = 20_000) -> AcquisitionSetup:
    return AcquisitionSetup(
        channels=(ChannelSetup(channel=1, scale_V_per_div=0.5, offset_V=1.5, probe_attenuation=10.0),),
        time_scale_s_per_div=1e-4,
        trigger=TriggerSetup(source_channel=1, level_V=level_V, slope="positive"),
        points=points,
        time_reference="center",
    )


def test_the_rig_keysight_driver_over_vxi11(scope_servers: tuple[ScpiSocketServer, Vxi11Server]) -> None:
    _raw, server = scope_servers
    scope = open_scope(ScopeConfig(resource=server.resource(), timeout_s=5))
    try:
        assert isinstance(scope, KeysightInfiniiVision)
        assert scope.identity().model == "DSO-X 3034T"
        scope.configure(_setup(level_V=1.5))
        scope.single(timeout_s=5)
        capture = scope.read_waveform(1)
        volts, times = capture.volts(), capture.times()
        assert capture.n > 1000 and capture.clipped_fraction() == 0
        assert np.median(volts[volts > 1.5]) == pytest.approx(PULSE_V, abs=0.1)
        assert np.median(volts[volts < 1.5]) == pytest.approx(0.0, abs=0.1)
        rising = np.flatnonzero((volts[:-1] < 1.5) & (volts[1:] >= 1.5))
        assert np.min(np.abs(times[rising])) < 5 * capture.x_increment_s

        scope.configure(_setup(level_V=10.0))  # never reached: *OPC? times out, device clear resyncs
        with pytest.raises(InstrumentError, match=r"no trigger / acquisition did not complete within 0\.3 s"):
            scope.single(timeout_s=0.3)
        scope.configure(_setup(level_V=1.5))
        scope.single(timeout_s=5)
        assert scope.read_waveform(1).n > 1000
    finally:
        scope.close()


def test_the_emulated_attenuator_over_vxi11(rm: pyvisa.ResourceManager) -> None:
    instrument = RcdatAttenuator(load_attenuator_model())
    with serving(instrument.session) as server:
        inst = _open(rm, server)
        inst.read_termination = "\r\n"
        try:
            assert inst.query(":SETATT=12.5") == "1"
            assert inst.query(":ATT?") == "12.5"
            assert instrument.attenuation_dB == 12.5
            assert inst.read_stb() == 0  # no status byte: 0
            with pytest.raises(pyvisa.VisaIOError) as info:
                inst.assert_trigger()  # no trigger(): error 8
            assert info.value.error_code == constants.StatusCode.error_nonsupported_operation
        finally:
            inst.close()

"""Point pyvisa-py's VXI-11 client at a portmapper that is not on TCP port 111.

A ``TCPIP0::host::inst0::INSTR`` resource is VXI-11: pyvisa-py first asks the ONC RPC portmapper of
``host`` where the VXI-11 core channel listens, then connects there. Real instruments run their
portmapper on port 111; an emulated instrument usually cannot (binding a port below 1024 needs root,
and an rpcbind may already own it), so it serves its portmapper on another port, and the client has
to be told which.

pyvisa-py has no option or resource syntax for that port. It reads the module global
``pyvisa_py.protocols.rpc.PMAP_PORT`` (111) each time it builds a portmapper client
(``rpc.TCPPortMapperClient.__init__`` passes ``PMAP_PORT`` to ``RawTCPClient``, and
``rpc.TCPClient``, the base of ``vxi11.CoreClient`` used to open INSTR resources, creates one of
those per opened resource; the UDP clients of resource discovery read it too). Rebinding that global
is therefore all it takes, and the rest of the rig stays plain pyvisa-py. It is process-wide: every
INSTR resource opened while it is set looks up its instrument there, real instruments included.

(pyvisa-py also accepts ``TCPIP0::host,<port>::inst0::INSTR``, which skips the portmapper and connects
to the core channel on ``<port>`` directly; that syntax is pyvisa-py's own, other VISA libraries
reject it, so the bench keeps the standard resource string and moves the portmapper instead.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pyvisa_py.protocols import rpc

STANDARD_PORTMAPPER_PORT = 111

_guard = threading.Lock()


def portmapper_port() -> int:
    """The port pyvisa-py's VXI-11 client currently asks for the core channel's port."""
    return int(rpc.PMAP_PORT)


def use_portmapper_port(port: int) -> None:
    """Make pyvisa-py look up VXI-11 instruments through the portmapper on TCP ``port`` (111: standard).

    Sets ``pyvisa_py.protocols.rpc.PMAP_PORT``, the module global pyvisa-py's portmapper clients read
    when they are created (see the module docstring), so it affects resources opened from now on, in
    the whole process. Raises ValueError for a port outside 1-65535.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"portmapper port {port!r} is not a TCP port (1-65535)")
    with _guard:
        rpc.PMAP_PORT = port


@contextmanager
def portmapper_port_set_to(port: int) -> Iterator[None]:
    """``use_portmapper_port(port)`` for the ``with`` block, then the previous port again.

    Only opening a resource looks the port up: a resource opened inside the block keeps working after it.
    """
    previous = portmapper_port()
    use_portmapper_port(port)
    try:
        yield
    finally:
        use_portmapper_port(previous)


__all__ = ["STANDARD_PORTMAPPER_PORT", "portmapper_port", "portmapper_port_set_to", "use_portmapper_port"]

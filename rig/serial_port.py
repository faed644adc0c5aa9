"""Opening a serial port (a device path or a pyserial URL) the same way for every bench transport."""

from __future__ import annotations

import serial

OPEN_ERRORS = (serial.SerialException, OSError, ValueError)


def open_serial(port: str, *, baudrate: int, timeout_s: float = 0.05) -> serial.SerialBase:
    """``/dev/ttyUSB0``-style paths with serial.Serial, ``socket://`` / ``loop://`` URLs with
    serial_for_url. Raises one of OPEN_ERRORS; callers turn it into their own clear error."""
    if "://" in port:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s)
    return serial.Serial(port, baudrate=baudrate, timeout=timeout_s)

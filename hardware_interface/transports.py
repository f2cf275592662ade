"""Byte transports the device drivers talk through: a serial line (pyserial) or a TCP socket.

`SerialTransport` opens anything pyserial's `serial_for_url` understands: a device path
("/dev/ttyUSB0", "COM3", a pseudo-terminal "/dev/pts/5"), "loop://", "socket://host:port", or
the simulated lab's "maosicsim://<lab>/<module>" (handler in hardware_interface.sim.emulators).
Every transport failure surfaces as `TransportError` so the daemon can mark the module faulted.
"""

from __future__ import annotations

import socket
import time
from typing import Protocol

import serial

# pyserial looks up "<scheme>://" URLs as module "<package>.protocol_<scheme>".
SIM_URL_PACKAGE = "hardware_interface.sim.emulators"
if SIM_URL_PACKAGE not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append(SIM_URL_PACKAGE)


class TransportError(OSError):
    """The line is gone: port missing, unplugged, closed, or the peer hung up."""


class Transport(Protocol):
    """What a driver needs from a byte line."""

    def write(self, data: bytes) -> None: ...

    def read_line(self, timeout_s: float) -> bytes:
        """One line including its LF, or the partial bytes (maybe b"") when `timeout_s` ran out."""
        ...

    def reset_input(self) -> None: ...

    def close(self) -> None: ...


class SerialTransport:
    """A pyserial port opened with `serial_for_url(url, baudrate)`; 8N1, no flow control."""

    def __init__(self, url: str, baudrate: int = 115200, max_line_bytes: int = 65536) -> None:
        self.url = url
        self._max = max_line_bytes
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open serial line {url!r}: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"write to {self.url!r} failed: {exc}") from exc

    def read_line(self, timeout_s: float) -> bytes:
        try:
            self._port.timeout = timeout_s
            return self._port.read_until(b"\n", self._max)
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"read from {self.url!r} failed: {exc}") from exc

    def reset_input(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"reset of {self.url!r} failed: {exc}") from exc

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass  # closing a dead line must not hide the original failure


class TcpTransport:
    """A TCP connection (e.g. the robot arm's controller) carrying the same line protocol."""

    def __init__(self, host: str, port: int, connect_timeout_s: float = 3.0) -> None:
        self.url = f"tcp://{host}:{port}"
        self._buffer = b""
        try:
            self._sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.url}: {exc}") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise TransportError(f"send to {self.url} failed: {exc}") from exc

    def read_line(self, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                partial, self._buffer = self._buffer, b""
                return partial
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as exc:
                raise TransportError(f"receive from {self.url} failed: {exc}") from exc
            if not chunk:
                raise TransportError(f"{self.url} closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def reset_input(self) -> None:
        self._buffer = b""

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


def open_transport(port: str, baudrate: int = 115200) -> Transport:
    """A transport for a lab-config `port` string: "tcp://host:port" or any serial URL/path."""
    if port.startswith("tcp://"):
        host, _, number = port[len("tcp://") :].rpartition(":")
        if not host or not number.isdigit():
            raise TransportError(f"bad TCP address {port!r}: expected tcp://HOST:PORT")
        return TcpTransport(host, int(number))
    return SerialTransport(port, baudrate)

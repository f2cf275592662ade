"""pyserial URL handler `maosicsim://<lab>/<module>`: a serial port wired to an emulator.

pyserial imports this module when `serial_for_url` sees the scheme, because
hardware_interface.transports adds this package to `serial.protocol_handler_packages`. Bytes
written go through the emulator at once (in the writer's thread), so in the instant simulation
a request/reply costs microseconds and never waits on the wall clock.
"""

from __future__ import annotations

import threading
import urllib.parse

import serial
from serial.serialutil import SerialBase, SerialException, Timeout

from hardware_interface.sim.emulators import registry
from hardware_interface.sim.emulators.base import LineDisconnected, LineEmulator


class Serial(SerialBase):
    """A serial port whose far end is a LineEmulator."""

    def open(self) -> None:
        if self.is_open:
            raise SerialException("port already open")
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        self._emulator = self.from_url(str(self._port))
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self.is_open = True

    def from_url(self, url: str) -> LineEmulator:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "maosicsim":
            raise SerialException(f"expected a maosicsim://LAB/MODULE URL, got {url!r}")
        try:
            return registry.lookup(parts.netloc, parts.path.strip("/"))
        except KeyError as exc:
            raise SerialException(str(exc.args[0])) from exc

    def _reconfigure_port(self) -> None:
        """Baud rate and framing mean nothing on an emulated line."""

    def close(self) -> None:
        self.is_open = False

    @property
    def in_waiting(self) -> int:
        return len(self._buffer)

    def _check(self) -> None:
        if not self.is_open:
            raise serial.PortNotOpenError()
        if self._emulator.disconnected:
            raise SerialException("emulated line disconnected")

    def write(self, data: bytes) -> int:
        self._check()
        try:
            reply = self._emulator.receive(bytes(data))
        except LineDisconnected as exc:
            raise SerialException(str(exc)) from exc
        if reply:
            with self._cond:
                self._buffer.extend(reply)
                self._cond.notify_all()
        return len(data)

    def _wait_for(self, ready, timeout: Timeout) -> None:
        with self._cond:
            while not ready() and not timeout.expired():
                self._check()
                remaining = timeout.time_left()
                self._cond.wait(None if remaining is None else max(remaining, 0.0))

    def read(self, size: int = 1) -> bytes:
        self._check()
        timeout = Timeout(self._timeout)
        self._wait_for(lambda: len(self._buffer) >= size, timeout)
        with self._cond:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        return data

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        # One search over the buffer instead of pyserial's byte-by-byte default, which matters
        # for multi-kB spectrum lines.
        self._check()
        timeout = Timeout(self._timeout)

        def ready() -> bool:
            return expected in self._buffer or (size is not None and len(self._buffer) >= size)

        self._wait_for(ready, timeout)
        with self._cond:
            end = self._buffer.find(expected)
            end = len(self._buffer) if end < 0 else end + len(expected)
            if size is not None:
                end = min(end, size)
            data = bytes(self._buffer[:end])
            del self._buffer[:end]
        return data

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._buffer.clear()

    def reset_output_buffer(self) -> None:
        """Writes are delivered at once: nothing is ever pending."""

    def flush(self) -> None:
        """Writes are delivered at once: nothing to flush."""

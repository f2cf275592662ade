"""Serve an emulator on a pseudo-terminal, so a driver opens a real tty (/dev/pts/N) with pyserial.

This exercises the OS serial path (termios, blocking reads) that the in-process
`maosicsim://` handler skips; it costs a thread and real I/O, so the daemon's --sim mode uses
the URL handler and tests use this bridge to prove the drivers work on a real tty.
"""

from __future__ import annotations

import os
import select
import threading
import tty

from hardware_interface.sim.emulators.base import LineDisconnected, LineEmulator


class PtyBridge:
    """Runs `emulator` behind the master side of a new pty; `port` is the slave's path."""

    def __init__(self, emulator: LineEmulator) -> None:
        self.emulator = emulator
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes pass untouched
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"pty-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._master], [], [], 0.05)
            if not readable:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            try:
                reply = self.emulator.receive(data)
            except LineDisconnected:
                return  # the cable is out: the host sees silence
            view = memoryview(reply)
            while view:
                written = os.write(self._master, view)
                view = view[written:]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

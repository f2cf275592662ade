"""Serve an emulator on a loopback TCP port (a free one the OS picks), one client at a time.

For the instruments a lab reaches over Ethernet (the Watlow F4T's Modbus TCP, port 502 on the
real controller), tests open the real client on 127.0.0.1:`port`. Portable: plain sockets, no
pseudo-terminal.
"""

from __future__ import annotations

import socket
import threading

from hardware_interface.sim.emulators.base import LineDisconnected, LineEmulator


class TcpBridge:
    """Accepts connections on 127.0.0.1:`port` and feeds their bytes to `emulator`."""

    def __init__(self, emulator: LineEmulator, host: str = "127.0.0.1") -> None:
        self.emulator = emulator
        self._server = socket.create_server((host, 0))
        self._server.settimeout(0.05)
        self.host = host
        self.port = self._server.getsockname()[1]
        self.url = f"tcp://{host}:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"tcp-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.05)
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                reply = self.emulator.receive(data)
            except LineDisconnected:
                return  # the cable is out: drop the connection
            if reply:
                try:
                    conn.sendall(reply)
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        try:
            self._server.close()
        except OSError:
            pass

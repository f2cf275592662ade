"""A transport that replays a scripted exchange, asserting every byte the driver sends
(the style of pymeasure's expected_protocol)."""

from __future__ import annotations

from hardware_interface.transports import TransportError

LOST = object()  # script marker: the line dies when this request is sent


class ScriptedTransport:
    """`script` is a list of (bytes the driver must send, reply bytes | None | LOST).

    None means the device stays silent (read_line then returns b"", as a serial read does when
    its timeout runs out, without waiting in the test).
    """

    def __init__(self, script: list[tuple[bytes, object]]) -> None:
        self.script = list(script)
        self.sent: list[bytes] = []
        self._pending = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        assert self.script, f"driver sent {data!r} but the script is finished"
        expected, reply = self.script.pop(0)
        self.sent.append(data)
        assert data == expected, f"driver sent {data!r}, expected {expected!r}"
        if reply is LOST:
            raise TransportError("scripted line loss")
        self._pending = b"" if reply is None else reply  # type: ignore[assignment]

    def read_line(self, timeout_s: float) -> bytes:
        line, sep, rest = self._pending.partition(b"\n")
        self._pending = rest
        return line + sep

    def reset_input(self) -> None:
        self._pending = b""

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        assert not self.script, f"driver did not send {self.script[0][0]!r}"

"""Byte-level base of the device emulators: framing, reply cache, and scripted misbehaviour.

An emulator is fed the bytes a driver writes and returns the bytes the device would answer,
exactly as the firmware in hardware_interface/firmware/ does. Subclasses provide a command table
{command word: handler(args) -> reply words}; a handler raises `CommandError` for an ER reply.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware_interface.devices.protocol import (
    ERR_BAD_ARGUMENT,
    ERR_BUSY,
    ERR_CHECKSUM,
    ERR_HARDWARE_FAULT,
    ERR_NOT_READY,
    ERR_OUT_OF_RANGE,
    ERR_UNKNOWN_COMMAND,
    MAX_LINE_BYTES,
    FrameError,
    decode_frame,
    encode_frame,
)
from hardware_interface.sim.errors import OfflineError, SimLabError

# How a refusal of the world model (its JSON-RPC-style code) shows up on the wire (ER code).
_WORLD_ERROR_TO_ER = {
    -32001: ERR_OUT_OF_RANGE,
    -32002: ERR_BUSY,
    -32003: ERR_HARDWARE_FAULT,
    -32004: ERR_HARDWARE_FAULT,
    -32005: ERR_BAD_ARGUMENT,
    -32006: ERR_OUT_OF_RANGE,
    -32007: ERR_NOT_READY,
}

# Ways an emulator can be told to misbehave (for tests of the drivers and the daemon).
DROP = "drop"  # execute the next request(s) but send no reply
GARBLE = "garble"  # execute and reply, with one byte of the reply corrupted
TIMEOUT = "timeout"  # the device hangs: neither execute nor reply
DISCONNECT = "disconnect"  # the line is lost: every later read/write fails
MISBEHAVIOURS = (DROP, GARBLE, TIMEOUT, DISCONNECT)


class CommandError(Exception):
    """Raised by a command handler to answer `ER <code> <text>`."""

    def __init__(self, code: int, text: str) -> None:
        # The wire is ASCII and '*' starts the checksum: keep the text safe to frame.
        safe = text.replace("°", "deg").encode("ascii", "replace").decode().replace("*", "x")
        super().__init__(safe)
        self.code = code
        self.text = " ".join(safe.split())[:80]


class LineDisconnected(OSError):
    """The emulated cable was pulled."""


Handler = Callable[[list[str]], list[str]]


@dataclass
class _Faults:
    pending: list[str | None] = field(default_factory=list)  # None: answer that one normally
    disconnected: bool = False


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def parse_number(args: list[str], index: int, name: str) -> float:
    """args[index] as a float, or ER 2 naming the argument."""
    if index >= len(args):
        raise CommandError(ERR_BAD_ARGUMENT, f"missing {name}")
    # The protocol's numbers are plain decimals (firmware_protocol.md): Python's float() would
    # also take "1e3", "1_000" or "nan", which the boards' firmware refuses.
    if not _DECIMAL.fullmatch(args[index]):
        raise CommandError(ERR_BAD_ARGUMENT, f"{name} {args[index]} not a number")
    value = float(args[index])
    if value != value or value in (float("inf"), float("-inf")):
        raise CommandError(ERR_BAD_ARGUMENT, f"{name} {args[index]} not finite")
    return value


class LineEmulator:
    """Framing and misbehaviour common to all emulated devices.

    `lock` serialises access to the shared world model (all emulators of one simulated lab
    share it, since requests arrive from several daemon threads at once).
    """

    model = "EMU"
    firmware = "1.0.0"

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self._rx = b""
        self._faults = _Faults()
        self._last_request: bytes | None = None
        self._last_reply = b""
        self.requests_seen = 0
        self.commands: dict[str, Handler] = {"ID": self._cmd_id}

    def _cmd_id(self, args: list[str]) -> list[str]:
        return [self.model, self.firmware]

    # -- test controls -----------------------------------------------------------------------
    def misbehave(self, kind: str, count: int = 1, after: int = 0) -> None:
        """Apply `kind` (drop, garble, timeout, disconnect) to `count` requests, once `after`
        further requests have been answered normally (to hit e.g. the second of two)."""
        if kind not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {kind!r}; choose from {MISBEHAVIOURS}")
        with self.lock:
            if kind == DISCONNECT:
                self._faults.disconnected = True
            else:
                self._faults.pending.extend([None] * after + [kind] * count)

    def reconnect(self) -> None:
        """Plug the emulated cable back in."""
        with self.lock:
            self._faults.disconnected = False
            self._rx = b""

    @property
    def disconnected(self) -> bool:
        return self._faults.disconnected

    # -- byte interface ----------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the host; return the bytes the device sends back (maybe b"")."""
        with self.lock:
            if self._faults.disconnected:
                raise LineDisconnected("emulated line disconnected")
            self._rx += data
            out = b""
            while b"\n" in self._rx:
                line, _, self._rx = self._rx.partition(b"\n")
                out += self._answer(line)
            if len(self._rx) > MAX_LINE_BYTES:
                self._rx = b""  # a runaway line without terminator: drop it like the firmware
            return out

    def _answer(self, line: bytes) -> bytes:
        self.requests_seen += 1
        fault = self._faults.pending.pop(0) if self._faults.pending else None
        if fault == TIMEOUT:
            return b""
        try:
            reply = self._reply_to(line)
        except OfflineError:
            return b""  # the world says this module is unplugged: the line stays silent
        if fault == DROP:
            return b""
        if fault == GARBLE and len(reply) > 4:
            middle = len(reply) // 2
            reply = reply[:middle] + bytes([reply[middle] ^ 0x21]) + reply[middle + 1 :]
        return reply

    def _reply_to(self, line: bytes) -> bytes:
        try:
            frame = decode_frame(line)
        except FrameError:
            # A corrupted request: answer ER 5 with the tag if it is still readable, so the
            # host's retry logic (which resends on ER 5) can match the reply to its request.
            tag = int(line[:2]) if line[:2].isdigit() else 0
            return encode_frame(tag, ["ER", str(ERR_CHECKSUM), "checksum"])
        # Same tag and bytes as the last request: the host retried, so do not execute again.
        if frame.tag != 0 and line == self._last_request:
            return self._last_reply
        if not frame.words:  # a tag and a checksum but no command: not a request (as firmware)
            return encode_frame(frame.tag, ["ER", str(ERR_CHECKSUM), "checksum"])
        command, args = frame.words[0], frame.words[1:]
        handler = self.commands.get(command)
        if handler is None:
            words = ["ER", str(ERR_UNKNOWN_COMMAND), f"unknown command {command}"]
        else:
            try:
                words = ["OK", *handler(args)]
            except CommandError as exc:
                words = ["ER", str(exc.code), exc.text]
            except OfflineError:
                raise
            except SimLabError as exc:
                refusal = CommandError(
                    _WORLD_ERROR_TO_ER.get(exc.code, ERR_BAD_ARGUMENT), exc.message
                )
                words = ["ER", str(refusal.code), refusal.text]
        reply = encode_frame(frame.tag, words)
        self._last_request = None if frame.tag == 0 else line
        self._last_reply = reply
        return reply

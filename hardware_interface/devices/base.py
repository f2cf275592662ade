"""Shared request/reply machinery of the drivers that speak the MAOSIC line protocol.

A driver subclass owns the command table of one device model and calls `self._query(cmd, *args)`;
this module does the framing, the tag bookkeeping, timeouts and retries, and turns every failure
into one of the `DeviceError` subclasses below, so the daemon can map them to JSON-RPC codes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hardware_interface.devices.protocol import (
    ERR_BUSY,
    ERR_CHECKSUM,
    ERR_HARDWARE_FAULT,
    ERR_NOT_READY,
    ERR_OUT_OF_RANGE,
    Frame,
    FrameError,
    decode_frame,
    encode_frame,
)
from hardware_interface.transports import Transport, TransportError

log = logging.getLogger(__name__)


class DeviceError(Exception):
    """Base of every driver failure; `device` names the driver instance (its module id)."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.detail = message


class RangeError(DeviceError):
    """An argument outside the device's limits, refused before anything is sent."""


class DeviceTimeout(DeviceError):
    """No complete reply within the timeout after all retries."""


class GarbledReply(DeviceError):
    """Replies kept failing their checksum or framing after all retries."""


class DeviceBusy(DeviceError):
    """The device answered ER 4: it is still executing a previous motion."""


class DeviceFault(DeviceError):
    """The device reported a hardware fault (ER 6), e.g. a heater over-temperature trip."""


class DeviceNotReady(DeviceError):
    """The device answered ER 7: the command needs a state it is not in (e.g. no sample)."""


class DeviceRefused(DeviceError):
    """Any other ER reply; `code` is the firmware's error number."""

    def __init__(self, device: str, code: int, message: str) -> None:
        super().__init__(device, f"device error {code}: {message}")
        self.code = code


class ConnectionLost(DeviceError):
    """The transport failed (unplugged, port closed): the module is offline."""


_ERROR_CLASSES: dict[int, type[DeviceError]] = {
    ERR_BUSY: DeviceBusy,
    ERR_HARDWARE_FAULT: DeviceFault,
    ERR_OUT_OF_RANGE: RangeError,
    ERR_NOT_READY: DeviceNotReady,
}


def check_range(device: str, name: str, value: float, low: float, high: float, unit: str) -> float:
    """Return `value` if low <= value <= high, else raise RangeError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise RangeError(device, f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise RangeError(device, f"{name} = {value} {unit} outside [{low}, {high}] {unit}")
    return float(value)


class LineDevice:
    """A device on one transport speaking the tagged, checksummed line protocol.

    timeout_s: seconds to wait for each reply; retries: extra attempts after a timeout, a
    garbled reply or a device-side checksum error (ER 5). Retrying reuses the tag so the device
    answers from its reply cache instead of executing a motion twice.
    on_exchange(name, request, reply): optional hook seeing the raw bytes (wire logging).
    """

    def __init__(
        self,
        transport: Transport,
        name: str = "device",
        timeout_s: float = 1.0,
        retries: int = 2,
        on_exchange: Callable[[str, bytes, bytes], None] | None = None,
    ) -> None:
        self.transport = transport
        self.name = name
        self.timeout_s = timeout_s
        self.retries = retries
        self.on_exchange = on_exchange
        self._tag = 0
        self._lock = threading.RLock()

    def _next_tag(self) -> int:
        # Tags cycle 1..99; 00 is reserved for `resync`, which the device never deduplicates.
        self._tag = self._tag % 99 + 1
        return self._tag

    def resync(self) -> list[str]:
        """Identify the device with tag 00, which also clears its reply cache (use on connect,
        so a tag left over from an earlier session cannot be mistaken for a retry)."""
        with self._lock:
            self._tag = 0
            return self._query_tag(0, "ID")

    def _query(self, command: str, *args: str, timeout_s: float | None = None) -> list[str]:
        """Send one command; return the reply's words after "OK". ``timeout_s`` replaces the
        device's reply timeout for a command that takes long by nature (a CD scan)."""
        with self._lock:
            return self._query_tag(self._next_tag(), command, *args, timeout_s=timeout_s)

    def _query_tag(
        self, tag: int, command: str, *args: str, timeout_s: float | None = None
    ) -> list[str]:
        wait_s = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            request = encode_frame(tag, [command, *args])
            problem = "no attempt made"
            for attempt in range(self.retries + 1):
                try:
                    if attempt:
                        self.transport.reset_input()
                    self.transport.write(request)
                    reply = self._read_reply(tag, wait_s)
                except TransportError as exc:
                    raise ConnectionLost(self.name, str(exc)) from exc
                if reply is None:
                    problem = f"no reply to {command} within {wait_s} s"
                    log.warning("%s: %s (attempt %d)", self.name, problem, attempt + 1)
                    continue
                frame, line = reply
                if self.on_exchange is not None:
                    self.on_exchange(self.name, request, line)
                if isinstance(frame, FrameError):
                    problem = f"garbled reply to {command}: {frame}"
                    log.warning("%s: %s (attempt %d)", self.name, problem, attempt + 1)
                    continue
                status, rest = frame.words[0], frame.words[1:]
                if status == "OK":
                    return rest
                if status != "ER" or not rest or not rest[0].isdigit():
                    problem = f"reply to {command} is neither OK nor ER: {frame.words[:3]}"
                    continue
                code, text = int(rest[0]), " ".join(rest[1:])
                if code == ERR_CHECKSUM:
                    problem = f"device saw a corrupted {command} request"
                    continue
                error_class = _ERROR_CLASSES.get(code)
                if error_class is not None:
                    raise error_class(self.name, f"{command}: {text}")
                raise DeviceRefused(self.name, code, f"{command}: {text}")
            if problem.startswith("no reply"):
                raise DeviceTimeout(self.name, f"{problem} after {self.retries + 1} attempts")
            raise GarbledReply(self.name, f"{problem} after {self.retries + 1} attempts")

    def _read_reply(
        self, tag: int, timeout_s: float | None = None
    ) -> tuple[Frame | FrameError, bytes] | None:
        """The decoded reply carrying `tag` (or the framing error of a garbled line) and its
        bytes; skips stale replies to earlier requests; None on timeout."""
        while True:
            line = self.transport.read_line(self.timeout_s if timeout_s is None else timeout_s)
            if not line.endswith(b"\n"):
                return None
            try:
                frame = decode_frame(line)
            except FrameError as exc:
                return exc, line  # the caller counts it as a garbled attempt
            if frame.tag != tag:
                continue  # a late reply to an earlier, timed-out request
            return frame, line

    def _floats(self, words: list[str], count: int, command: str) -> list[float]:
        """Parse `count` numbers from a reply, raising GarbledReply on bad content."""
        if len(words) < count:
            raise GarbledReply(self.name, f"{command} reply has {len(words)} fields, need {count}")
        try:
            return [float(w) for w in words[:count]]
        except ValueError as exc:
            raise GarbledReply(self.name, f"{command} reply not numeric: {words[:count]}") from exc

    def identify(self) -> list[str]:
        """The device's ID reply words: model, firmware version, ..."""
        return self._query("ID")

    def close(self) -> None:
        self.transport.close()

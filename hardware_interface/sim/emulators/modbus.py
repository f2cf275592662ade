"""Byte-level Modbus slave for the emulators: RTU or TCP framing, function codes 03, 04, 06, 16.

Written from the Modbus Application Protocol Specification V1.1b3 (PDUs, exception responses,
section 7) and "MODBUS over Serial Line Specification and Implementation Guide V1.02"
(RTU frame: address, PDU, CRC-16 low byte first, polynomial 0xA001) and "MODBUS Messaging on
TCP/IP Implementation Guide V1.0b" (MBAP header: transaction id, protocol id 0, length, unit).
It shares no code with the pymodbus client the drivers use, so a test through both proves the
two readings of the specification agree. A request with a bad CRC, or for another unit, gets
no answer, as on a real bus.
"""

from __future__ import annotations

import struct
import threading

from hardware_interface.sim.emulators.base import (
    DROP,
    GARBLE,
    TIMEOUT,
    LineDisconnected,
    LineEmulator,
)
from hardware_interface.sim.errors import LimitError, OfflineError, SimLabError

RTU, TCP = "rtu", "tcp"
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 2, 3, 4
MAX_READ = 125
MAX_WRITE = 123


class ModbusError(Exception):
    """Raised by a register handler to answer a Modbus exception response."""

    def __init__(self, code: int) -> None:
        super().__init__(f"Modbus exception {code}")
        self.code = code


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (init 0xFFFF, reflected polynomial 0xA001)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes([unit]) + pdu
    return body + struct.pack("<H", crc16(body))


class ModbusEmulator(LineEmulator):
    """A Modbus slave; subclasses implement `read_registers` / `write_registers`.

    framing: RTU (serial lines, the maosicsim:// handler, pseudo-terminals) or TCP (MBAP).
    """

    def __init__(self, unit: int, framing: str = RTU, lock: threading.RLock | None = None) -> None:
        super().__init__(lock)
        if framing not in (RTU, TCP):
            raise ValueError(f"framing must be {RTU!r} or {TCP!r}")
        self.unit = unit
        self.framing = framing
        self.frames_seen: list[bytes] = []

    # -- what a device implements ---------------------------------------------------------
    def read_registers(self, function: int, address: int, count: int) -> list[int]:
        raise ModbusError(ILLEGAL_ADDRESS)

    def write_registers(self, address: int, values: list[int]) -> None:
        raise ModbusError(ILLEGAL_ADDRESS)

    # -- bytes ----------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        with self.lock:
            if self._faults.disconnected:
                raise LineDisconnected("emulated line disconnected")
            self._rx += data
            out = b""
            while True:
                frame = self._take_frame()
                if frame is None:
                    break
                out += self._answer_frame(frame)
            return out

    def _take_frame(self) -> bytes | None:
        rx = self._rx
        if self.framing == TCP:
            if len(rx) < 7:
                return None
            length = struct.unpack(">H", rx[4:6])[0]
            if len(rx) < 6 + length:
                return None
            frame, self._rx = rx[: 6 + length], rx[6 + length :]
            return frame
        if len(rx) < 8:
            return None
        function = rx[1]
        size = 8
        if function == 16:
            if len(rx) < 7:
                return None
            size = 9 + rx[6]
        if len(rx) < size:
            return None
        frame, self._rx = rx[:size], rx[size:]
        return frame

    def _answer_frame(self, frame: bytes) -> bytes:
        self.requests_seen += 1
        self.frames_seen.append(frame)
        fault = self._faults.pending.pop(0) if self._faults.pending else None
        if fault == TIMEOUT:
            return b""
        if self.framing == TCP:
            header, unit, pdu = frame[:4], frame[6], frame[7:]
        else:
            if crc16(frame[:-2]) != struct.unpack("<H", frame[-2:])[0]:
                self._rx = b""  # resynchronise on the next request
                return b""
            unit, pdu = frame[0], frame[1:-2]
        if unit != self.unit:
            return b""
        try:
            reply_pdu = self._execute(pdu)
        except OfflineError:
            return b""
        if self.framing == TCP:
            reply = header + struct.pack(">HB", len(reply_pdu) + 1, unit) + reply_pdu
        else:
            reply = rtu_frame(unit, reply_pdu)
        if fault == DROP:
            return b""
        if fault == GARBLE:
            middle = len(reply) // 2
            reply = reply[:middle] + bytes([reply[middle] ^ 0x21]) + reply[middle + 1 :]
        return reply

    def _execute(self, pdu: bytes) -> bytes:
        function = pdu[0] if pdu else 0
        try:
            if function in (3, 4) and len(pdu) == 5:
                address, count = struct.unpack(">HH", pdu[1:5])
                if not 1 <= count <= MAX_READ:
                    raise ModbusError(ILLEGAL_VALUE)
                words = self.read_registers(function, address, count)
                return bytes([function, 2 * count]) + struct.pack(f">{count}H", *words)
            if function == 6 and len(pdu) == 5:
                address, value = struct.unpack(">HH", pdu[1:5])
                self.write_registers(address, [value])
                return pdu
            if function == 16 and len(pdu) >= 6:
                address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
                if not 1 <= count <= MAX_WRITE or nbytes != 2 * count or len(pdu) != 6 + nbytes:
                    raise ModbusError(ILLEGAL_VALUE)
                values = list(struct.unpack(f">{count}H", pdu[6:]))
                self.write_registers(address, values)
                return pdu[:5]
            raise ModbusError(ILLEGAL_FUNCTION)
        except ModbusError as exc:
            return bytes([(function | 0x80) & 0xFF, exc.code])
        except OfflineError:
            raise
        except LimitError:
            return bytes([(function | 0x80) & 0xFF, ILLEGAL_VALUE])
        except SimLabError:  # the world refused (e.g. a latched fault): a slave device failure
            return bytes([(function | 0x80) & 0xFF, DEVICE_FAILURE])

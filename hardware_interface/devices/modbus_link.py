"""A Modbus master for one device unit, on pymodbus, with failures mapped to DeviceError.

`open_modbus` turns a lab-file port into a pymodbus client: "tcp://HOST:PORT" is Modbus TCP
(MBAP framing); anything else is a serial line opened by pymodbus through pyserial's
`serial_for_url` ("COM3", "/dev/ttyUSB0", a pseudo-terminal, or the simulator's
"maosicsim://LAB/MODULE") with RTU framing. Function codes used: 03 read holding registers,
04 read input registers, 06 write single register, 16 write multiple registers (Modbus
Application Protocol Specification V1.1b3, sections 6.3, 6.4, 6.6, 6.12).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from hardware_interface.devices.base import (
    ConnectionLost,
    DeviceBusy,
    DeviceError,
    DeviceFault,
    DeviceRefused,
    DeviceTimeout,
    RangeError,
)
from hardware_interface.transports import TransportError

# Modbus exception codes (Modbus Application Protocol V1.1b3, section 7)
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 2, 3, 4
DEVICE_BUSY = 6


def open_modbus(
    port: str,
    baudrate: int,
    timeout_s: float,
    retries: int,
    trace_packet: Callable[[bool, bytes], bytes] | None = None,
) -> Any:
    """A connected pymodbus client for `port`; TransportError when the line cannot open."""
    if port.startswith("tcp://"):
        host, _, number = port[len("tcp://") :].rpartition(":")
        if not host or not number.isdigit():
            raise TransportError(f"bad TCP address {port!r}: expected tcp://HOST:PORT")
        client: Any = ModbusTcpClient(
            host, port=int(number), timeout=timeout_s, retries=retries, trace_packet=trace_packet
        )
    else:
        client = ModbusSerialClient(
            port,
            framer=FramerType.RTU,
            baudrate=baudrate,
            bytesize=8,
            parity="N",
            stopbits=1,
            timeout=timeout_s,
            retries=retries,
            trace_packet=trace_packet,
        )
    if not client.connect():
        client.close()
        raise TransportError(f"cannot open Modbus line {port!r}")
    return client


def float_to_words(value: float) -> list[int]:
    """An IEEE-754 float32 as two registers, low-order word first."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [low, high]


def words_to_float(words: list[int]) -> float:
    """Two registers, low-order word first, as the float32 they hold."""
    return struct.unpack(">f", struct.pack(">HH", words[1], words[0]))[0]


class ModbusUnit:
    """Register reads and writes to unit `unit` through `client`; every failure a DeviceError."""

    def __init__(self, client: Any, name: str, unit: int) -> None:
        if not 0 <= unit <= 247:
            raise RangeError(name, f"Modbus unit {unit} outside [0, 247]")
        self.client = client
        self.name = name
        self.unit = unit
        self._lock = threading.RLock()

    def _call(self, what: str, action: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                reply = action()
            except ModbusException as exc:
                text = str(exc)
                if "connect" in text.lower() or "closed" in text.lower():
                    raise ConnectionLost(self.name, f"{what}: {text}") from exc
                raise DeviceTimeout(self.name, f"{what}: {text}") from exc
            except OSError as exc:
                raise ConnectionLost(self.name, f"{what}: {exc}") from exc
            if reply.isError():
                code = getattr(reply, "exception_code", 0)
                error: type[DeviceError] = {
                    ILLEGAL_ADDRESS: DeviceRefused,
                    ILLEGAL_VALUE: RangeError,
                    DEVICE_FAILURE: DeviceFault,
                    DEVICE_BUSY: DeviceBusy,
                }.get(code, DeviceRefused)
                message = f"{what}: Modbus exception {code}"
                if error is DeviceRefused:
                    raise DeviceRefused(self.name, code, message)
                raise error(self.name, message)
            return reply

    def read_holding(self, address: int, count: int) -> list[int]:
        reply = self._call(
            f"read {count} holding registers at {address}",
            lambda: self.client.read_holding_registers(address, count=count, device_id=self.unit),
        )
        return list(reply.registers)

    def read_input(self, address: int, count: int) -> list[int]:
        reply = self._call(
            f"read {count} input registers at {address}",
            lambda: self.client.read_input_registers(address, count=count, device_id=self.unit),
        )
        return list(reply.registers)

    def write(self, address: int, values: list[int]) -> None:
        self._call(
            f"write {len(values)} registers at {address}",
            lambda: self.client.write_registers(address, values, device_id=self.unit),
        )

    def write_one(self, address: int, value: int) -> None:
        """Function code 06, write single register."""
        self._call(
            f"write register {address}",
            lambda: self.client.write_register(address, value, device_id=self.unit),
        )

    def read_float(self, address: int) -> float:
        return words_to_float(self.read_holding(address, 2))

    def write_float(self, address: int, value: float) -> None:
        self.write(address, float_to_words(value))

    def close(self) -> None:
        self.client.close()

"""Emulator of a Robotiq 2F-85 gripper: Modbus RTU slave 9 with its output and input registers.

Registers and bit fields as in hardware_interface/devices/robotiq_2f85.py (sources there).
Timings are this emulator's own (activation ACTIVATION_S, a full stroke STROKE_S at full
speed), run on `clock` (the SimLab's clock in the simulated lab, so waits there cost no wall
time). `object_at`: the position (0..255) where closing fingers meet an object (a cuvette);
None: nothing between the fingers. The fingers' travel ends at MIN_POSITION and MAX_POSITION,
as the manual's p. 80 example shows (13 when fully open); requests beyond them are reached
"at the requested position" (gOBJ 3). A motion requested without rACT reports fault 0x07 (the
code's meaning is not confirmed from a public document; this emulator's choice).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hardware_interface.sim.emulators.modbus import (
    ILLEGAL_ADDRESS,
    RTU,
    ModbusEmulator,
    ModbusError,
)

ACTIVATION_S = 1.5
STROKE_S = 0.8  # full stroke at speed 255
MIN_POSITION, MAX_POSITION = 13, 228
FAULT_NOT_ACTIVATED = 0x07


class Robotiq2F85Emulator(ModbusEmulator):
    model = "Robotiq 2F-85"

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        object_at: int | None = None,
        unit: int = 9,
        framing: str = RTU,
        lock: threading.RLock | None = None,
    ) -> None:
        super().__init__(unit, framing, lock)
        self.clock = clock
        self.object_at = object_at
        self.output = [0, 0, 0]
        self._activated_at: float | None = None
        self._fault = 0
        self._from = MIN_POSITION
        self._target = MIN_POSITION
        self._move_start = 0.0
        self._move_s = 0.0
        self._going = False

    # -- motion ---------------------------------------------------------------------------
    def _activation(self, now: float) -> int:
        if self._activated_at is None:
            return 0
        return 3 if now - self._activated_at >= ACTIVATION_S else 1

    def _stop_point(self) -> int:
        """Where the fingers end: the request, the travel limits, or the object."""
        target = min(max(self._target, MIN_POSITION), MAX_POSITION)
        if self.object_at is not None and self._from < self.object_at <= target:
            return self.object_at
        return target

    def _position(self, now: float) -> int:
        end = self._stop_point()
        if self._move_s <= 0 or now >= self._move_start + self._move_s:
            return end
        fraction = (now - self._move_start) / self._move_s
        return round(self._from + (end - self._from) * fraction)

    def _object(self, now: float) -> int:
        if not self._going:
            return 0
        if now < self._move_start + self._move_s:
            return 0
        end = self._stop_point()
        if end == min(max(self._target, MIN_POSITION), MAX_POSITION):
            return 3
        return 2 if self._target > self._from else 1

    def _start_motion(self, now: float) -> None:
        position = self._position(now)
        self._from = position
        self._target = self.output[1] & 0xFF
        speed = self.output[2] >> 8
        full = STROKE_S * (1.0 + 3.0 * (255 - speed) / 255)  # slower at low speed
        self._move_s = abs(self._stop_point() - position) / 255 * full
        self._move_start = now
        self._going = True

    # -- registers ------------------------------------------------------------------------
    def write_registers(self, address: int, values: list[int]) -> None:
        if not (0x03E8 <= address and address + len(values) <= 0x03E8 + 3):
            raise ModbusError(ILLEGAL_ADDRESS)
        now = self.clock()
        for i, value in enumerate(values):
            self.output[address - 0x03E8 + i] = value
        action = self.output[0] >> 8
        ract, rgto = bool(action & 0x01), bool(action & 0x08)
        if not ract:
            self._activated_at = None
            self._going = False
            self._fault = FAULT_NOT_ACTIVATED if rgto else 0
            return
        self._fault = 0
        if self._activated_at is None:
            self._activated_at = now
            self._from = self._target = MIN_POSITION
            self._going = False
            return
        if rgto and self._activation(now) == 3:
            self._start_motion(now)
        elif not rgto and self._going:
            self._from = self._target = self._position(now)  # halt where the fingers are
            self._move_s = 0.0
            self._going = False

    def read_registers(self, function: int, address: int, count: int) -> list[int]:
        if address == 0x03E8 and count <= 3 and function == 3:
            return self.output[:count]
        if not (address >= 0x07D0 and address + count <= 0x07D0 + 3):
            raise ModbusError(ILLEGAL_ADDRESS)
        now = self.clock()
        activation = self._activation(now)
        act = 1 if self._activated_at is not None else 0
        gto = 1 if self._going else 0
        status = act | gto << 3 | activation << 4 | self._object(now) << 6
        moving = self._going and now < self._move_start + self._move_s
        words = [
            status << 8,
            self._fault << 8 | (self.output[1] & 0xFF),
            self._position(now) << 8 | (0x10 if moving else 0x00),
        ]
        start = address - 0x07D0
        return words[start : start + count]

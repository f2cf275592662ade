"""Emulator of the MAB-1 Arduino board: two gas valves (in the world model) and a stepper."""

from __future__ import annotations

import threading
from typing import Any

from hardware_interface.devices.protocol import (
    ERR_BAD_ARGUMENT,
    ERR_BUSY,
    ERR_OUT_OF_RANGE,
    fmt,
)
from hardware_interface.sim.emulators.base import CommandError, LineEmulator, parse_number

MAX_STEPS = 100000
MAX_SPEED_STEPS_S = 2000.0


class ArduinoEmulator(LineEmulator):
    """Speaks the ArduinoBoard command table; `valve_ids` maps valve 1, 2 to world valve ids."""

    model = "MAB1"

    def __init__(
        self, world: Any, valve_ids: tuple[str, str], lock: threading.RLock | None = None
    ) -> None:
        super().__init__(lock)
        self.world = world
        self.valve_ids = valve_ids
        self.valve_open = [False, False]
        self.position_steps = 0
        self._move_end_s = 0.0
        self.commands.update(
            {
                "VLV": self._valve,
                "VLS": self._valves,
                "MOV": self._move,
                "STS": self._stepper,
                "HLT": self._halt,
            }
        )

    def _valve(self, args: list[str]) -> list[str]:
        if len(args) < 2 or args[0] not in ("1", "2") or args[1] not in ("0", "1"):
            raise CommandError(ERR_BAD_ARGUMENT, "usage VLV <1|2> <0|1>")
        index, state = int(args[0]) - 1, args[1] == "1"
        self.world.valve_set(self.valve_ids[index], state)
        self.valve_open[index] = state
        return []

    def _valves(self, args: list[str]) -> list[str]:
        return ["1" if v else "0" for v in self.valve_open]

    def _busy(self) -> bool:
        return self.world.clock.now() < self._move_end_s

    def _move(self, args: list[str]) -> list[str]:
        steps = parse_number(args, 0, "steps")
        speed = parse_number(args, 1, "speed")
        if steps != int(steps) or abs(steps) > MAX_STEPS or not 1.0 <= speed <= MAX_SPEED_STEPS_S:
            raise CommandError(ERR_OUT_OF_RANGE, "steps or speed out of range")
        if self._busy():
            raise CommandError(ERR_BUSY, "busy")
        duration = abs(steps) / speed
        self._move_end_s = self.world.clock.now() + duration
        self.position_steps += int(steps)
        return [fmt(duration, 3)]

    def _stepper(self, args: list[str]) -> list[str]:
        return [str(self.position_steps), "1" if self._busy() else "0"]

    def _halt(self, args: list[str]) -> list[str]:
        self._move_end_s = 0.0
        for index in (0, 1):
            self.world.valve_set(self.valve_ids[index], False)
            self.valve_open[index] = False
        return []

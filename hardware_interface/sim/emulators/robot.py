"""Emulator of the MRA-1 robot arm controller over the world's robot model."""

from __future__ import annotations

import threading
from typing import Any

from hardware_interface.devices.protocol import ERR_BAD_ARGUMENT, ERR_BUSY, fmt
from hardware_interface.sim.emulators.base import CommandError, LineEmulator

POSITIONS = ("home", "sampler", "abs", "cd", "waste")


class RobotArmEmulator(LineEmulator):
    """Speaks the RobotArm command table; moves are timed by the world model."""

    model = "MRA1"

    def __init__(self, world: Any, lock: threading.RLock | None = None) -> None:
        super().__init__(lock)
        self.world = world
        self.gripper_closed = False
        self._target: str | None = None
        self.commands.update(
            {
                "MOV": self._move,
                "POS": self._position,
                "GRP": self._grip,
                "GRS": self._grip_state,
                "HLT": self._halt,
            }
        )

    def _move(self, args: list[str]) -> list[str]:
        if not args or args[0] not in POSITIONS:
            raise CommandError(ERR_BAD_ARGUMENT, "unknown position")
        if self.world.robot_busy():
            raise CommandError(ERR_BUSY, "busy")
        duration = float(self.world.robot_move(args[0]))
        self._target = args[0]
        return [fmt(duration, 3)]

    def _position(self, args: list[str]) -> list[str]:
        busy = bool(self.world.robot_busy())
        where = self._target if busy and self._target else str(self.world.robot_position())
        return [where, "1" if busy else "0"]

    def _grip(self, args: list[str]) -> list[str]:
        if not args or args[0] not in ("0", "1"):
            raise CommandError(ERR_BAD_ARGUMENT, "usage GRP <0|1>")
        self.gripper_closed = args[0] == "1"
        return []

    def _grip_state(self, args: list[str]) -> list[str]:
        return ["1" if self.gripper_closed else "0"]

    def _halt(self, args: list[str]) -> list[str]:
        # The simulated arm finishes its current segment; a protective stop has nothing to undo.
        return []

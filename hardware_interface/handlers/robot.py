"""robot.*: move the cuvette between named positions, status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.errors import LIMIT_EXCEEDED, AppError

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon


class RobotMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def robot_status(self) -> dict[str, Any]:
        robot = self.lab.require(self.lab.robot, "robot")
        where, busy = self.lab.call(robot, lambda d: d.position(), check_fault=False)
        return {
            "module": robot,
            "position": where,
            "busy": busy,
            **self.lab.module_state(robot, busy),
        }

    def robot_move(self, position: str) -> dict[str, Any]:
        """Move to a named position (home, sampler, abs, cd, waste) and wait until there."""
        robot = self.lab.require(self.lab.robot, "robot")
        positions = self.lab.config.devices[robot].positions
        if position not in positions:
            raise AppError(LIMIT_EXCEEDED, robot, f"{robot}: unknown position "
                           f"{safety.shown(position)}; positions: {list(positions)}",
                           param="position")  # fmt: skip
        duration = self.lab.call(robot, lambda d: d.move(position))
        self.lab.belief.note_arm(position)  # the arm completes a move even if the daemon dies
        self.lab.wait_until(
            lambda: not self.lab.call(robot, lambda d: d.position()[1]),
            duration,
            duration + 60.0,
            robot,
            f"position {position}",
        )
        return {**self.robot_status(), "duration_s": duration}

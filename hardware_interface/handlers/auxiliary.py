"""peristaltic.* and stepper.*: the STM32 board's peristaltic pump and the Arduino's stepper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon


class AuxiliaryMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def peristaltic_set(self, rpm: float) -> dict[str, Any]:
        """Run the peristaltic pump on the heater board at `rpm` (signed; 0 stops it)."""
        board = self.lab.require(self.lab.heater, "heater board")
        self.lab.call(board, lambda d: d.set_peristaltic(rpm))
        return self.peristaltic_status()

    def peristaltic_status(self) -> dict[str, Any]:
        board = self.lab.require(self.lab.heater, "heater board")
        rpm = self.lab.call(board, lambda d: d.peristaltic(), check_fault=False)
        return {"module": board, "rpm": rpm, **self.lab.module_state(board)}

    def stepper_move(self, steps: int, speed_steps_s: float = 200.0) -> dict[str, Any]:
        """Relative move of the Arduino board's stepper by `steps` at `speed_steps_s` (steps/s);
        waits until the move is done."""
        board = self.lab.require(self.lab.board, "Arduino board")
        duration = self.lab.call(board, lambda d: d.move_stepper(steps, speed_steps_s))
        self.lab.wait_until(
            lambda: not self.lab.call(board, lambda d: d.stepper()[1]),
            duration,
            duration + 60.0,
            board,
            "stepper idle",
        )
        return {**self.stepper_status(), "duration_s": duration}

    def stepper_status(self) -> dict[str, Any]:
        board = self.lab.require(self.lab.board, "Arduino board")
        position, busy = self.lab.call(board, lambda d: d.stepper(), check_fault=False)
        state = self.lab.module_state(board, busy)
        return {"module": board, "position_steps": position, "busy": busy, **state}

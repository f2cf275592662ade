"""Driver of the MAOSIC Arduino board (model MAB-1): a stepper motor and two gas valves."""

from __future__ import annotations

from hardware_interface.devices.base import GarbledReply, LineDevice, RangeError, check_range
from hardware_interface.transports import Transport

MODEL = "MAB1"
VALVE_COUNT = 2
MAX_STEPS = 100000
MAX_SPEED_STEPS_S = 2000.0


class ArduinoBoard(LineDevice):
    """Arduino Uno with a stepper driver and two 12 V solenoid gas valves (normally closed).

    Command table (request words -> reply words after OK):
        ID                    -> MAB1 <firmware>
        VLV <n> <0|1>         -> (none)           valve n (1 or 2) closed/open
        VLS                   -> <v1 0|1> <v2 0|1>
        MOV <steps> <steps/s> -> <duration_s>     relative stepper move, signed steps
        STS                   -> <position_steps> <busy 0|1>
        HLT                   -> (none)           stop the stepper, close both valves
    Errors: ER 2 bad argument, ER 3 out of range, ER 4 stepper busy.
    """

    valve_count = VALVE_COUNT

    def __init__(
        self, transport: Transport, name: str = "arduino", timeout_s: float = 1.0, retries: int = 2
    ) -> None:
        super().__init__(transport, name, timeout_s, retries)

    def set_valve(self, index: int, open_: bool) -> None:
        """Open (True) or close valve `index` (1-based)."""
        if not isinstance(index, int) or not 1 <= index <= VALVE_COUNT:
            raise RangeError(self.name, f"valve index {index!r} not in 1..{VALVE_COUNT}")
        self._query("VLV", str(index), "1" if open_ else "0")

    def valves(self) -> list[bool]:
        words = self._query("VLS")
        if len(words) < VALVE_COUNT or any(w not in ("0", "1") for w in words[:VALVE_COUNT]):
            raise GarbledReply(self.name, f"VLS reply {words} is not {VALVE_COUNT} flags")
        return [w == "1" for w in words[:VALVE_COUNT]]

    def move_stepper(self, steps: int, speed_steps_s: float) -> float:
        """Relative move by `steps` (signed) at `speed_steps_s`; returns the duration (s)."""
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise RangeError(self.name, f"steps must be an integer, got {steps!r}")
        check_range(self.name, "steps", steps, -MAX_STEPS, MAX_STEPS, "steps")
        check_range(self.name, "speed", speed_steps_s, 1.0, MAX_SPEED_STEPS_S, "steps/s")
        return self._floats(self._query("MOV", str(steps), f"{speed_steps_s:.0f}"), 1, "MOV")[0]

    def stepper(self) -> tuple[int, bool]:
        words = self._query("STS")
        if len(words) < 2 or words[1] not in ("0", "1") or not words[0].lstrip("-").isdigit():
            raise GarbledReply(self.name, f"STS reply {words} is not '<steps> <0|1>'")
        return int(words[0]), words[1] == "1"

    def stop(self) -> None:
        self._query("HLT")

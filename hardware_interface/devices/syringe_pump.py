"""Driver of the MAOSIC syringe pump board (model MSP-1: one stepper-driven syringe per line).

MSP1 is this project's own board protocol, not Longer's. The MAOSIC paper's pumps are Longer
MSP1-C2 OEM syringe pump modules; the project's pump board (firmware in
hardware_interface/firmware/arduino/msp1_pump/, protocol in
hardware_interface/firmware/docs/firmware_protocol.md) drives such a module and speaks the
protocol below to the daemon. Longer publishes no serial protocol for the MSP1-C2 that we found,
so no driver here talks to the module itself, and nothing below is Longer's command set: "MSP1"
is the project board's model name, not a claim about Longer's.
"""

from __future__ import annotations

from hardware_interface.devices.base import GarbledReply, LineDevice, check_range
from hardware_interface.devices.capabilities import PumpState
from hardware_interface.devices.protocol import fmt
from hardware_interface.transports import Transport

MODEL = "MSP1"
DEFAULT_CAPACITY_ML = 0.5  # the paper's 0.5 mL glass syringes
DEFAULT_MAX_RATE_ML_MIN = 2.0
MIN_RATE_ML_MIN = 0.001
MIN_VOLUME_ML = 0.0001  # one microstep of the lead screw with a 0.5 mL syringe, rounded


class SyringePump(LineDevice):
    """One syringe pump. Volumes travel in uL with one decimal, rates in uL/min.

    Command table (request words -> reply words after OK):
        ID                 -> MSP1 <capacity_uL> <firmware>
        INF <uL> <uL/min>  -> <duration_s>      push liquid out of the syringe
        WDR <uL> <uL/min>  -> <duration_s>      draw liquid into the syringe
        STP                -> (none)            stop now, keep the position reached
        STA                -> <busy 0|1> <volume_uL>
    Errors: ER 3 (volume or rate outside the board's limits, over-fill, empty), ER 4 (busy).
    """

    def __init__(
        self,
        transport: Transport,
        name: str = "pump",
        capacity_mL: float = DEFAULT_CAPACITY_ML,
        max_rate_mL_min: float = DEFAULT_MAX_RATE_ML_MIN,
        timeout_s: float = 1.0,
        retries: int = 2,
    ) -> None:
        super().__init__(transport, name, timeout_s, retries)
        self.capacity_mL = capacity_mL
        self.max_rate_mL_min = max_rate_mL_min

    def _move(self, command: str, volume_mL: float, rate_mL_min: float) -> float:
        check_range(self.name, "volume_mL", volume_mL, MIN_VOLUME_ML, self.capacity_mL, "mL")
        check_range(
            self.name, "rate_mL_min", rate_mL_min, MIN_RATE_ML_MIN, self.max_rate_mL_min, "mL/min"
        )
        words = self._query(command, fmt(volume_mL * 1000.0), fmt(rate_mL_min * 1000.0))
        return self._floats(words, 1, command)[0]

    def infuse(self, volume_mL: float, rate_mL_min: float) -> float:
        """Push `volume_mL` (mL) at `rate_mL_min` (mL/min); returns the duration (s)."""
        return self._move("INF", volume_mL, rate_mL_min)

    def withdraw(self, volume_mL: float, rate_mL_min: float) -> float:
        """Draw `volume_mL` (mL) at `rate_mL_min` (mL/min); returns the duration (s)."""
        return self._move("WDR", volume_mL, rate_mL_min)

    def stop(self) -> None:
        self._query("STP")

    def status(self) -> PumpState:
        words = self._query("STA")
        if len(words) < 2 or words[0] not in ("0", "1"):
            raise GarbledReply(self.name, f"STA reply {words} is not '<0|1> <volume_uL>'")
        volume_uL = self._floats(words[1:], 1, "STA")[0]
        return PumpState(busy=words[0] == "1", volume_mL=volume_uL / 1000.0)

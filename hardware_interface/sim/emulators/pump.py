"""Emulator of the MSP-1 syringe pump board over the simulated lab's pump model."""

from __future__ import annotations

import threading
from typing import Any

from hardware_interface.devices.protocol import ERR_BUSY, ERR_OUT_OF_RANGE, fmt
from hardware_interface.sim.emulators.base import CommandError, LineEmulator, parse_number

MAX_RATE_UL_MIN = 5000.0  # the board's stepper limit with a 0.5 mL syringe


class SyringePumpEmulator(LineEmulator):
    """Speaks the SyringePump command table for pump `pump_id` of `world` (a SimLab)."""

    model = "MSP1"

    def __init__(
        self,
        world: Any,
        pump_id: str,
        reagent: str | None,
        capacity_mL: float,
        lock: threading.RLock | None = None,
    ) -> None:
        super().__init__(lock)
        self.world = world
        self.pump_id = pump_id
        self.reagent = reagent
        self.capacity_uL = capacity_mL * 1000.0
        self.commands.update(
            {"INF": self._infuse, "WDR": self._withdraw, "STP": self._stop, "STA": self._status}
        )

    def _cmd_id(self, args: list[str]) -> list[str]:
        return [self.model, fmt(self.capacity_uL), self.firmware]

    def _volume_uL(self) -> float:
        return float(self.world.syringe_volume_mL(self.pump_id)) * 1000.0

    def _move(self, args: list[str], direction: str) -> list[str]:
        volume = parse_number(args, 0, "volume_uL")
        rate = parse_number(args, 1, "rate_uL_min")
        if self.world.pump_busy(self.pump_id):
            raise CommandError(ERR_BUSY, "busy")
        if not 0.0 < rate <= MAX_RATE_UL_MIN:
            raise CommandError(ERR_OUT_OF_RANGE, f"rate {rate} uL/min out of range")
        held = self._volume_uL()
        if volume <= 0.0:
            raise CommandError(ERR_OUT_OF_RANGE, f"volume {volume} uL out of range")
        # 0.05 uL of slack: the host rounds volumes to 0.1 uL on the wire
        if direction == "withdraw" and held + volume > self.capacity_uL + 0.05:
            raise CommandError(ERR_OUT_OF_RANGE, f"over-fill {held:.1f}+{volume:.1f} uL")
        if direction == "infuse" and volume > held + 0.05:
            raise CommandError(ERR_OUT_OF_RANGE, f"empty: holds {held:.1f} uL")
        volume_mL = min(volume, held) / 1000.0 if direction == "infuse" else volume / 1000.0
        # A refusal of the world (e.g. stock bottle empty) becomes an ER reply in the base class.
        duration = self.world.pump_start(
            self.pump_id,
            direction,
            volume_mL,
            rate / 1000.0,
            reagent=self.reagent if direction == "withdraw" else None,
        )
        return [fmt(float(duration), 3)]

    def _infuse(self, args: list[str]) -> list[str]:
        return self._move(args, "infuse")

    def _withdraw(self, args: list[str]) -> list[str]:
        return self._move(args, "withdraw")

    def _stop(self, args: list[str]) -> list[str]:
        self.world.pump_stop(self.pump_id)
        return []

    def _status(self, args: list[str]) -> list[str]:
        busy = "1" if self.world.pump_busy(self.pump_id) else "0"
        return [busy, fmt(max(self._volume_uL(), 0.0))]

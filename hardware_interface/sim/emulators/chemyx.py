"""Emulator of a Chemyx Fusion 6000 syringe pump's RS-232 ASCII commands over the SimLab pump.

Speaks the command set described in hardware_interface/devices/chemyx_fusion.py (sources and
unconfirmed details are listed there). Commands end with "\\r" or "\\r\\n"; a lone "\\n" is not
a terminator ([KB-RS232]), so such bytes stay in the buffer unanswered. Replies end "\\r\\n".
A multi-step program runs its steps one after the other; the next step starts when a request
arrives after the previous one ended (the daemon polls `pump status` while it waits).
"""

from __future__ import annotations

import threading
from typing import Any

from hardware_interface.sim.emulators.base import (
    DROP,
    GARBLE,
    TIMEOUT,
    LineDisconnected,
    LineEmulator,
)
from hardware_interface.sim.errors import OfflineError, SimLabError

DIAMETER_MIN_MM = 0.103
DIAMETER_MAX_MM = 40.0
MAX_RATE_ML_MIN = 60.0  # the emulated pump's ceiling with the simulated syringe
MAX_LINE = 256


class ChemyxEmulator(LineEmulator):
    """A Chemyx Fusion 6000 moving syringe `pump_id` of `world` (a SimLab)."""

    model = "Chemyx Fusion 6000"

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
        self.capacity_mL = capacity_mL
        self.units = 0
        self.diameter_mm = 14.427
        self.volumes: list[float] = [1.0]
        self.rates: list[float] = [1.0]
        self.delay_min = 0.0
        self._steps: list[tuple[float, float]] = []  # what is left of the program
        self._paused = False
        self._stalled = False
        self._start_volume_mL = 0.0
        self._dispensed_done_mL = 0.0  # volume of the steps of this run already finished
        self._run_started = False
        self.lines_seen: list[bytes] = []

    # -- bytes ----------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        with self.lock:
            if self._faults.disconnected:
                raise LineDisconnected("emulated line disconnected")
            self._rx += data
            out = b""
            while b"\r" in self._rx:
                line, _, rest = self._rx.partition(b"\r")
                self._rx = rest[1:] if rest.startswith(b"\n") else rest
                out += self._answer_line(line)
            if len(self._rx) > MAX_LINE:
                self._rx = b""
            return out

    def _answer_line(self, line: bytes) -> bytes:
        self.requests_seen += 1
        self.lines_seen.append(line)
        fault = self._faults.pending.pop(0) if self._faults.pending else None
        if fault == TIMEOUT:
            return b""
        try:
            self._advance()
            text = self._reply(line.decode("ascii", "replace").strip())
        except OfflineError:
            return b""
        except SimLabError as exc:
            text = f"Error: {exc.message}"
        reply = text.encode("ascii", "replace") + b"\r\n"
        if fault == DROP:
            return b""
        if fault == GARBLE and len(reply) > 4:
            middle = len(reply) // 2
            reply = reply[:middle] + bytes([reply[middle] ^ 0x21]) + reply[middle + 1 :]
        return reply

    # -- the pump -------------------------------------------------------------------------
    def _factor_to_mL(self) -> float:
        return 1.0 if self.units in (0, 1) else 0.001

    def _rate_to_mL_min(self, rate: float) -> float:
        return rate * self._factor_to_mL() / (60.0 if self.units in (1, 3) else 1.0)

    def _busy(self) -> bool:
        return bool(self.world.pump_busy(self.pump_id))

    def _advance(self) -> None:
        """Start the next step of the program once the previous one has ended."""
        if self._steps and not self._paused and not self._busy():
            self._start_step()

    def _start_step(self) -> None:
        volume_mL, rate_mL_min = self._steps[0]
        held = float(self.world.syringe_volume_mL(self.pump_id))
        if self._run_started:
            self._dispensed_done_mL += abs(held - self._start_volume_mL)
        self._run_started = True
        self._start_volume_mL = held
        self._steps.pop(0)
        if volume_mL > 0:  # infuse: the plunger stops at the end of the syringe
            if held <= 1e-9:
                self._stalled = True
                self._steps.clear()
                return
            self.world.pump_start(self.pump_id, "infuse", min(volume_mL, held), rate_mL_min)
        else:
            room = self.capacity_mL - held
            if -volume_mL > room + 1e-6:
                self._stalled = True
                self._steps.clear()
                return
            self.world.pump_start(
                self.pump_id, "withdraw", -volume_mL, rate_mL_min, reagent=self.reagent
            )

    def _status(self) -> int:
        if self._stalled:
            return 4
        if self._paused:
            return 2
        return 1 if self._busy() or self._steps else 0

    def _dispensed_mL(self) -> float:
        if not self._run_started:
            return 0.0
        held = float(self.world.syringe_volume_mL(self.pump_id))
        return self._dispensed_done_mL + abs(held - self._start_volume_mL)

    @staticmethod
    def _fmt(value: float) -> str:
        text = f"{value:.5f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text

    def _values(self, text: str) -> list[float] | None:
        try:
            return [float(v) for v in text.replace(" ", "").split(",") if v != ""]
        except ValueError:
            return None

    def _reply(self, line: str) -> str:
        words = line.split(" ", 2)
        if line == "start":
            return self._start()
        if line == "pause":
            if self._status() == 1:
                self.world.pump_stop(self.pump_id)
                self._paused = True
            return "Pump pause!"
        if line == "stop":
            self.world.pump_stop(self.pump_id)
            self._steps.clear()
            self._paused = False
            return "Pump stop!"
        if line == "pump status":
            return str(self._status())
        if line == "dispensed volume":
            return self._fmt(self._dispensed_mL() / self._factor_to_mL())
        if line == "help":
            return "start stop pause set diameter set rate set volume set units pump status"
        if len(words) == 3 and words[0] == "set":
            return self._set(words[1], words[2])
        return "Unknown command"

    def _start(self) -> str:
        if self._paused:  # resume the step that was paused
            self._paused = False
            return "Pump start running..."
        if self._status() == 1:
            return "Pump start running..."
        count = len(self.volumes)
        rates = self.rates + [self.rates[-1]] * max(0, count - len(self.rates))
        steps = []
        for volume, rate in zip(self.volumes, rates[:count], strict=True):
            steps.append((volume * self._factor_to_mL(), self._rate_to_mL_min(rate)))
        self._stalled = False
        self._steps = steps
        self._run_started = False
        self._dispensed_done_mL = 0.0
        self._start_step()
        return "Pump start running..."

    def _set(self, what: str, text: str) -> str:
        values = self._values(text)
        if not values:
            return "Unknown command"
        if what == "units":
            if values[0] in (0, 1, 2, 3):
                self.units = int(values[0])
            return str(self.units)
        if what == "diameter":
            if DIAMETER_MIN_MM <= values[0] <= DIAMETER_MAX_MM:
                self.diameter_mm = round(values[0], 3)
            return self._fmt(self.diameter_mm)
        if what == "volume":
            if all(abs(v) * self._factor_to_mL() <= self.capacity_mL and v != 0 for v in values):
                self.volumes = [round(v, 5) for v in values]
            return ",".join(self._fmt(v) for v in self.volumes)
        if what == "rate":
            if all(0 < self._rate_to_mL_min(r) <= MAX_RATE_ML_MIN for r in values):
                self.rates = [round(r, 5) for r in values]
            return ",".join(self._fmt(r) for r in self.rates)
        if what == "delay":
            if values[0] >= 0:
                self.delay_min = values[0]
            return self._fmt(self.delay_min)
        return "Unknown command"

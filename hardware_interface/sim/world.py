"""SimLab: the shared physical state of the simulated lab that every device emulator uses.

Everything is a function of the lab's clock, evaluated lazily when asked: pump moves are records
with start time and rate, the heater is integrated up to the query time, the reactor's outlet is
derived from the flow history by plug flow.  One re-entrant lock makes it thread-safe.

Module ids: pumps "SP1".."SP3" ("SP4" too for cs3cu2i5), heater "H1", robot "CR1",
spectrometers "SPEC1" (absorbance + CD, cuvette) and "PL1" (in-line flow cell), valves "V1", "V2".
Errors are hardware_interface.sim.errors.SimLabError subclasses that name the module.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hardware_interface.sim import chemistry as chem
from hardware_interface.sim import rig
from hardware_interface.sim.clock import SimClock
from hardware_interface.sim.errors import (
    BusyError,
    FaultError,
    LimitError,
    NotReadyError,
    OfflineError,
    UnknownModuleError,
)
from hardware_interface.sim.fluidics import Fluidics, Syringe
from hardware_interface.sim.heater import HeaterModel
from hardware_interface.sim.optics import (
    Sample,
    absorbance_and_cd,
    make_sample,
    photoluminescence,
    sample_conditions,
)
from hardware_interface.sim.state_file import SimStateError, read_state, write_state

log = logging.getLogger(__name__)

HEATER_ID = "H1"
ROBOT_ID = "CR1"
SPECTROMETER_ID = "SPEC1"
PL_ID = "PL1"

# Noise-free objective per chemistry: params by name -> value (|CD| mdeg, PLQY %).
_GROUND_TRUTH: dict[str, Callable[[dict[str, Any]], float]] = {
    "cspbbr3": lambda p: float(chem.cspbbr3_cd_truth(float(p["T"]), float(p["C"]))),
    "cs3cu2i5": lambda p: float(chem.cs3cu2i5_plqy_truth(p)),
}
_OPTIMUM: dict[str, tuple[dict[str, float], float]] = {
    "cspbbr3": (
        dict(zip(chem.CSPBBR3_SPACE.names, chem.CSPBBR3_OPTIMUM[0], strict=True)),
        chem.CSPBBR3_OPTIMUM[1],
    ),
    "cs3cu2i5": chem.CS3CU2I5_OPTIMUM,
}
_SPACE: dict[str, chem.SearchSpace] = {
    "cspbbr3": chem.CSPBBR3_SPACE,
    "cs3cu2i5": chem.CS3CU2I5_SPACE,
}


def _number(module: str, name: str, value: Any) -> float:
    """``value`` as a finite float, or a LimitError naming the module and the parameter."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise LimitError(module, f"{name} must be a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number):
        raise LimitError(module, f"{name} must be finite, got {value!r}")
    return number


class SimLab:
    """The simulated lab. ``speed`` 0 = instant mode (waits cost no wall time).

    All times are simulated seconds of ``self.clock``; volumes mL, rates mL/min, °C, nm, mdeg.
    state_path: keep the physical state (syringes, stock bottles, heater, arm) in this file, as
    hardware keeps it across a daemon restart: loaded at start, saved after every change and on
    ``close`` (hardware_interface.sim.state_file). None: a fresh lab that is forgotten.
    """

    def __init__(
        self,
        chemistry: str = "cspbbr3",
        seed: int = 0,
        speed: float = 0.0,
        state_path: Path | None = None,
    ) -> None:
        if chemistry not in rig.RIGS:
            raise ValueError(f"SimLab: unknown chemistry {chemistry!r}; known: {sorted(rig.RIGS)}")
        self.chemistry = chemistry
        self.seed = seed
        self.spec = rig.RIGS[chemistry]
        self.clock = SimClock(speed)
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(seed)
        self._fluidics = Fluidics(
            syringes={
                pid: Syringe(pid, self.spec.syringe_mL, self.spec.max_rate_mL_min)
                for pid in self.spec.pump_reagents
            },
            stock_mL=dict(self.spec.stock_mL),
            tube_volume_mL=self.spec.tube_volume_mL,
            dispersion_tanks=self.spec.dispersion_tanks,
        )
        self._heater = HeaterModel(0.0, ripple_phase=float(self._rng.uniform(0, 2 * np.pi)))
        self._valves = {v: False for v in rig.VALVE_IDS}
        self._robot_pos = "home"
        self._robot_target = "home"
        self._robot_arrive_s = 0.0
        self._cuvette: Sample | None = None
        self._pending_pickup: float | None = None  # arrival time at the sampler
        self._pending_discard = False
        self._offline: set[str] = set()
        self._last_sample_info: dict[str, Any] | None = None
        self._state_path = state_path
        if state_path is not None:
            saved = read_state(state_path, self.spec)
            if saved is not None:
                self._restore(saved)

    # --- persistence --------------------------------------------------------------------------
    def physical_state(self) -> dict[str, Any]:
        """What would still be so after the daemon restarts: syringes (a move in progress
        counted as finished), stock bottles, heater, arm (its target, if moving)."""
        with self._lock:
            now = self.clock.now()
            syringes = {}
            for pid, syr in self._fluidics.syringes.items():
                end = now if syr.move is None else max(now, syr.move.end_s)
                syringes[pid] = {"volume_mL": syr.volume_at(end), "reagent": syr.reagent}
            self._settle_robot(now)
            return {
                "chemistry": self.chemistry,
                "syringes": syringes,
                "stock_mL": dict(self._fluidics.stock_mL),
                "heater": self._heater.snapshot(now),
                "robot": {"position": self._robot_target},
            }

    def _restore(self, saved: dict[str, Any]) -> None:
        for pid, entry in saved["syringes"].items():
            syr = self._fluidics.syringe(pid)
            syr.volume_mL = min(float(entry["volume_mL"]), syr.capacity_mL)
            syr.reagent = entry["reagent"]
        self._fluidics.stock_mL.update({k: float(v) for k, v in saved["stock_mL"].items()})
        self._heater.restore(saved["heater"])
        self._robot_pos = self._robot_target = saved["robot"]["position"]

    def _changed(self) -> None:
        """Save the physical state after a change (the caller holds the lock). A file that
        cannot be written must not fail the device command that changed the state: logged."""
        if self._state_path is not None:
            try:
                write_state(self._state_path, self.physical_state())
            except SimStateError as exc:
                log.error("%s", exc)

    def close(self) -> None:
        """Save the physical state one last time (the heater's temperature moved meanwhile)."""
        with self._lock:
            self._changed()

    # --- description --------------------------------------------------------------------------
    @property
    def pump_ids(self) -> list[str]:
        return list(self.spec.pump_reagents)

    @property
    def module_ids(self) -> list[str]:
        return [*self.pump_ids, HEATER_ID, ROBOT_ID, SPECTROMETER_ID, PL_ID, *rig.VALVE_IDS]

    @property
    def reagents(self) -> dict[str, float]:
        """Stock bottle name -> mL left."""
        with self._lock:
            return dict(self._fluidics.stock_mL)

    def pump_reagent_default(self, pump: str) -> str:
        """The reagent a pump is plumbed to in this rig (its stock bottle)."""
        self._check_pump(pump)
        return self.spec.pump_reagents[pump]

    @property
    def residence_time_s(self) -> float:
        """Residence time (s) at the rig's nominal total flow (cs3cu2i5: 750 uL/min)."""
        flow = rig.TOTAL_FLOW_ML_MIN if self.chemistry == "cspbbr3" else 0.75
        return self.spec.tube_volume_mL / flow * 60.0

    def space(self) -> chem.SearchSpace:
        return _SPACE[self.chemistry]

    def optimum(self) -> tuple[dict[str, float], float]:
        """The noise-free objective's global optimum: (params by name, value)."""
        return _OPTIMUM[self.chemistry]

    # --- faults -------------------------------------------------------------------------------
    def _check_online(self, module: str) -> None:
        if module in self._offline:
            raise OfflineError(module, "not connected (simulated disconnection)")

    def set_offline(self, module: str, offline: bool = True) -> None:
        """Fault injection: the module stops answering (OfflineError) until set back online."""
        if module not in self.module_ids:
            raise UnknownModuleError(module, f"no such module; modules are {self.module_ids}")
        with self._lock:
            if offline:
                self._offline.add(module)
            else:
                self._offline.discard(module)

    def inject_overtemperature(self, delta_C: float) -> None:
        """Fault injection: the thermocouple reads ``delta_C`` °C high from now on.

        If the reading passes the firmware's trip (HEATER_TRIP_C) the heater latches an
        over-temperature fault within one control period: power off, setpoint cleared.
        """
        delta = _number(HEATER_ID, "delta_C", delta_C)
        with self._lock:
            self._heater.inject_offset(self.clock.now(), delta)
            self._changed()  # it may have tripped

    def heater_fault(self) -> str | None:
        """The heater's latched fault ("overtemperature") or None."""
        with self._lock:
            self._heater.advance(self.clock.now())
            return self._heater.fault

    def reset_faults(self) -> None:
        """Clear latched faults and injected offsets (after an emergency stop)."""
        with self._lock:
            self._heater.clear_fault(self.clock.now())
            self._changed()

    def emergency_stop(self) -> list[str]:
        """All pumps stop, heater off. Returns the ids of the modules made safe."""
        with self._lock:
            now = self.clock.now()
            for pid in self.pump_ids:
                self._fluidics.stop(now, pid)
            self._heater.set(now, None, self._heater.ramp_C_min)
            self._changed()
            return [*self.pump_ids, HEATER_ID]

    # --- pumps --------------------------------------------------------------------------------
    def _check_pump(self, pump: str) -> None:
        if pump not in self.spec.pump_reagents:
            raise UnknownModuleError(pump, f"no such pump; pumps are {self.pump_ids}")

    def syringe_volume_mL(self, pump: str) -> float:
        """mL in the syringe now."""
        with self._lock:
            self._check_pump(pump)
            return self._fluidics.syringe(pump).volume_at(self.clock.now())

    def syringe_capacity_mL(self, pump: str) -> float:
        self._check_pump(pump)
        return self.spec.syringe_mL

    def syringe_reagent(self, pump: str) -> str | None:
        """Reagent in the syringe (None when it never held any)."""
        with self._lock:
            self._check_pump(pump)
            return self._fluidics.syringe(pump).reagent

    def pump_start(
        self,
        pump: str,
        direction: str,
        volume_mL: float,
        rate_mL_min: float,
        reagent: str | None = None,
    ) -> float:
        """Start a move; returns its duration (s). "withdraw" draws ``reagent`` from its stock
        bottle (default: the bottle the pump is plumbed to), "infuse" pushes into the reactor."""
        volume = _number(pump, "volume_mL", volume_mL)
        rate = _number(pump, "rate_mL_min", rate_mL_min)
        with self._lock:
            self._check_pump(pump)
            self._check_online(pump)
            if direction == "withdraw" and reagent is None:
                reagent = self.spec.pump_reagents[pump]
            duration = self._fluidics.start(
                self.clock.now(), pump, direction, volume, rate, reagent
            )
            self._changed()
            return duration

    def pump_busy(self, pump: str) -> bool:
        with self._lock:
            self._check_pump(pump)
            return self._fluidics.syringe(pump).busy(self.clock.now())

    def pump_stop(self, pump: str) -> None:
        with self._lock:
            self._check_pump(pump)
            self._fluidics.stop(self.clock.now(), pump)
            self._changed()

    def pump_status(self, pump: str) -> dict[str, Any]:
        """{"pump", "volume_mL", "capacity_mL", "reagent", "busy", "state"} (contract A)."""
        with self._lock:
            self._check_pump(pump)
            now = self.clock.now()
            syr = self._fluidics.syringe(pump)
            busy = syr.busy(now)
            state = "offline" if pump in self._offline else ("busy" if busy else "ok")
            return {
                "pump": pump,
                "volume_mL": syr.volume_at(now),
                "capacity_mL": syr.capacity_mL,
                "reagent": syr.reagent,
                "busy": busy,
                "state": state,
            }

    def stock_mL(self, reagent: str) -> float:
        """mL left in the stock bottle of ``reagent``."""
        with self._lock:
            if reagent not in self._fluidics.stock_mL:
                raise UnknownModuleError(
                    reagent, f"no stock bottle; bottles are {sorted(self._fluidics.stock_mL)}"
                )
            return self._fluidics.stock_mL[reagent]

    def set_stock_mL(self, reagent: str, volume_mL: float) -> None:
        """Set a stock bottle's content (tests: make a request run out of reagent)."""
        with self._lock:
            self.stock_mL(reagent)
            if not volume_mL >= 0.0:
                raise LimitError(reagent, f"stock volume must be >= 0 mL, got {volume_mL!r}")
            self._fluidics.stock_mL[reagent] = float(volume_mL)
            self._changed()

    # --- heater -------------------------------------------------------------------------------
    def heater_set(self, setpoint_C: float | None, ramp_C_min: float) -> None:
        """Setpoint (°C, None = off) and ramp (°C/min); the firmware applies it at its next tick."""
        if setpoint_C is not None:
            setpoint_C = _number(HEATER_ID, "setpoint_C", setpoint_C)
        ramp_C_min = _number(HEATER_ID, "ramp_C_min", ramp_C_min)
        with self._lock:
            self._check_online(HEATER_ID)
            if setpoint_C is not None:
                if self._heater.fault is not None:
                    raise FaultError(
                        HEATER_ID, f"tripped ({self._heater.fault}); reset faults first"
                    )
                if not rig.HEATER_MIN_C <= setpoint_C <= rig.HEATER_MAX_C:
                    raise LimitError(
                        HEATER_ID,
                        f"setpoint_C must be in [{rig.HEATER_MIN_C}, {rig.HEATER_MAX_C}] °C, "
                        f"got {setpoint_C!r}",
                    )
            if not 0.0 < ramp_C_min <= rig.HEATER_RAMP_MAX_C_MIN:
                raise LimitError(
                    HEATER_ID,
                    f"ramp_C_min must be in (0, {rig.HEATER_RAMP_MAX_C_MIN}] °C/min, "
                    f"got {ramp_C_min!r}",
                )
            self._heater.set(
                self.clock.now(), None if setpoint_C is None else float(setpoint_C), ramp_C_min
            )
            self._changed()

    def heater_set_pid(self, kp: float, ki: float, kd: float) -> None:
        """PID gains: kp %/K, ki %/(K s), kd % s/K (all >= 0)."""
        with self._lock:
            for name, value in (("kp", kp), ("ki", ki), ("kd", kd)):
                if not 0.0 <= value <= 1000.0:
                    raise LimitError(HEATER_ID, f"{name} must be in [0, 1000], got {value!r}")
            self._heater.set_pid(self.clock.now(), kp, ki, kd)
            self._changed()

    def heater_pid(self) -> tuple[float, float, float]:
        with self._lock:
            return self._heater.pid()

    def heater_temperature_C(self) -> float:
        """Thermocouple reading (°C): block temperature plus control ripple (and any injection)."""
        with self._lock:
            self._check_online(HEATER_ID)
            return self._heater.reading_C(self.clock.now())

    def heater_block_temperature_C(self) -> float:
        """True block temperature (°C), without ripple or injected offset (tests)."""
        with self._lock:
            return self._heater.temperature_C(self.clock.now())

    def heater_setpoint_C(self) -> float | None:
        with self._lock:
            self._heater.advance(self.clock.now())
            return self._heater.setpoint_C

    def heater_ramp_C_min(self) -> float:
        with self._lock:
            return self._heater.ramp_C_min

    def heater_power_pct(self) -> float:
        with self._lock:
            self._heater.advance(self.clock.now())
            return self._heater.power_pct

    def heater_stable(self, window_s: float = rig.HEATER_STABLE_WINDOW_S) -> bool:
        """True when within ±1 °C of the (reached) setpoint for the last ``window_s`` s."""
        with self._lock:
            return self._heater.stable(self.clock.now(), window_s)

    def heater_status(self) -> dict[str, Any]:
        """{"temperature_C", "setpoint_C", "stable", "power_pct", "state", "fault"} (contract A)."""
        with self._lock:
            offline = HEATER_ID in self._offline
            fault = self.heater_fault()
            return {
                "temperature_C": None if offline else self.heater_temperature_C(),
                "setpoint_C": self.heater_setpoint_C(),
                "stable": self.heater_stable(),
                "power_pct": self.heater_power_pct(),
                "state": "offline" if offline else ("fault" if fault else "ok"),
                "fault": fault,
            }

    # --- robot and samples --------------------------------------------------------------------
    def robot_move(self, position: str) -> float:
        """Start moving the arm (with the cuvette) to ``position``; returns the duration (s).

        Arriving at "sampler" fills the cuvette with the reactor's latest outlet (replacing any
        old sample); arriving at "waste" empties it.
        """
        with self._lock:
            self._check_online(ROBOT_ID)
            if not isinstance(position, str) or position not in rig.ROBOT_POSITIONS:
                raise LimitError(
                    ROBOT_ID, f"unknown position {position!r}; positions are {rig.ROBOT_POSITIONS}"
                )
            now = self.clock.now()
            self._settle_robot(now)
            if now < self._robot_arrive_s:
                raise BusyError(ROBOT_ID, f"moving to {self._robot_target!r}")
            travel = 0.0
            if position != self._robot_pos:
                travel = rig.ROBOT_MOVE_S[frozenset({self._robot_pos, position})]
            duration = travel + rig.ROBOT_GRIP_S
            self._robot_target = position
            self._robot_arrive_s = now + duration
            if position == "sampler":
                self._pending_pickup = self._robot_arrive_s
            elif position == "waste":
                self._pending_discard = True
            self._changed()
            return duration

    def _settle_robot(self, now: float) -> None:
        """Apply the effects of an arrival that has happened by ``now``."""
        if now < self._robot_arrive_s:
            return
        self._robot_pos = self._robot_target
        if self._pending_pickup is not None:
            taken_at = self._pending_pickup
            self._pending_pickup = None
            self._cuvette = self._draw_sample(taken_at, rig.SAMPLE_ML)
            self._last_sample_info = sample_conditions(self._cuvette)
        if self._pending_discard:
            self._pending_discard = False
            self._cuvette = None

    def _draw_sample(self, at_s: float, volume_mL: float) -> Sample:
        self._heater.advance(at_s)
        parcels = self._fluidics.outlet_parcels(at_s, volume_mL)
        return make_sample(
            self.chemistry, parcels, self._heater.mean_temperature_C, self._rng, at_s
        )

    def robot_position(self) -> str:
        """Where the arm is (its last reached position while moving)."""
        with self._lock:
            self._settle_robot(self.clock.now())
            return self._robot_pos

    def robot_busy(self) -> bool:
        with self._lock:
            now = self.clock.now()
            self._settle_robot(now)
            return now < self._robot_arrive_s

    def cuvette_loaded(self) -> bool:
        with self._lock:
            self._settle_robot(self.clock.now())
            return self._cuvette is not None

    def _cuvette_at(self, allowed: tuple[str, ...], module: str) -> Sample:
        self._check_online(module)
        now = self.clock.now()
        self._settle_robot(now)
        if now < self._robot_arrive_s:
            raise NotReadyError(module, f"the robot is still moving to {self._robot_target!r}")
        if self._robot_pos not in allowed:
            raise NotReadyError(
                module,
                f"no cuvette in the spectrometer: the robot is at {self._robot_pos!r}, "
                f"move it to one of {allowed}",
            )
        if self._cuvette is None:
            raise NotReadyError(module, "the cuvette is empty: move the robot to 'sampler' first")
        return self._cuvette

    @staticmethod
    def _check_integration(module: str, integration_ms: float) -> None:
        integration_ms = _number(module, "integration_ms", integration_ms)
        if not rig.INTEGRATION_MIN_MS <= integration_ms <= rig.INTEGRATION_MAX_MS:
            raise LimitError(
                module,
                f"integration_ms must be in [{rig.INTEGRATION_MIN_MS}, {rig.INTEGRATION_MAX_MS}]"
                f" ms, got {integration_ms!r}",
            )

    def measure_absorbance(self, integration_ms: float = 100.0) -> dict[str, Any]:
        """{"wavelength_nm", "absorbance", "saturated"} of the cuvette at "abs" or "cd"."""
        with self._lock:
            self._check_integration(SPECTROMETER_ID, integration_ms)
            sample = self._cuvette_at(("abs", "cd"), SPECTROMETER_ID)
            spectra = absorbance_and_cd(sample, integration_ms, self._rng)
            return {k: spectra[k] for k in ("wavelength_nm", "absorbance", "saturated")}

    def measure_cd(self, integration_ms: float = 100.0) -> dict[str, Any]:
        """{"wavelength_nm", "cd_mdeg", "absorbance", "saturated"} of the cuvette at "cd"."""
        with self._lock:
            self._check_integration(SPECTROMETER_ID, integration_ms)
            sample = self._cuvette_at(("cd",), SPECTROMETER_ID)
            return absorbance_and_cd(sample, integration_ms, self._rng)

    def measure_pl(
        self, integration_ms: float = 100.0, excitation_nm: float = 300.0
    ) -> dict[str, Any]:
        """PL of the in-line flow cell at the reactor outlet (no robot needed).

        {"wavelength_nm", "intensity" (counts), "abs_300nm", "pl_peak_intensity", "pl_area",
        "plqy_proxy_pct"}.  Before any product reached the outlet the cell holds solvent.
        """
        with self._lock:
            self._check_online(PL_ID)
            self._check_integration(PL_ID, integration_ms)
            excitation_nm = _number(PL_ID, "excitation_nm", excitation_nm)
            if not 250.0 <= excitation_nm <= 420.0:
                raise LimitError(
                    PL_ID, f"excitation_nm must be in [250, 420] nm, got {excitation_nm!r}"
                )
            now = self.clock.now()
            sample = self._draw_sample(now, rig.PL_CELL_ML)
            self._last_sample_info = sample_conditions(sample)
            return photoluminescence(sample, integration_ms, excitation_nm, self._rng)

    def last_sample_conditions(self) -> dict[str, Any] | None:
        """What the last sample (cuvette fill or PL reading) really was: mean T_C and C_mmol_mL
        (or the flows), "equilibrated", noise-free "value" (|CD| mdeg / PLQY %); None before any.
        """
        with self._lock:
            self._settle_robot(self.clock.now())
            return None if self._last_sample_info is None else dict(self._last_sample_info)

    def outlet_conditions(self) -> dict[str, Any]:
        """What is leaving the reactor right now (the last SAMPLE_ML), without taking a sample."""
        with self._lock:
            return sample_conditions(self._draw_sample(self.clock.now(), rig.SAMPLE_ML))

    # --- valves -------------------------------------------------------------------------------
    def valve_set(self, valve: str, open: bool) -> None:
        with self._lock:
            if valve not in self._valves:
                raise UnknownModuleError(valve, f"no such valve; valves are {list(self._valves)}")
            self._check_online(valve)
            self._valves[valve] = bool(open)

    def valve_open(self, valve: str) -> bool:
        with self._lock:
            if valve not in self._valves:
                raise UnknownModuleError(valve, f"no such valve; valves are {list(self._valves)}")
            return self._valves[valve]

    # --- ground truth -------------------------------------------------------------------------
    def ground_truth(self, params: dict[str, Any]) -> float:
        """Noise-free objective at ``params`` ({"T", "C"} or the cs3cu2i5 keys)."""
        missing = [n for n in _SPACE[self.chemistry].names if n not in params]
        if missing:
            raise KeyError(
                f"ground_truth({self.chemistry}): missing {missing}; "
                f"expected {list(_SPACE[self.chemistry].names)}"
            )
        return _GROUND_TRUTH[self.chemistry](params)

    # --- lab-wide -----------------------------------------------------------------------------
    def wait(self, seconds: float) -> float:
        """Wait on the lab's clock; returns the new time (s)."""
        seconds = _number("system", "seconds", seconds)
        if seconds < 0.0:
            raise LimitError("system", f"seconds must be >= 0, got {seconds!r}")
        return self.clock.sleep(seconds)

    def status(self) -> dict[str, Any]:
        """Per-module state (contract A's system.status shape) and the clock."""
        with self._lock:
            modules: dict[str, Any] = {}
            for pid in self.pump_ids:
                st = self.pump_status(pid)
                modules[pid] = {"state": st["state"], "fault": None}
            heater = self.heater_status()
            modules[HEATER_ID] = {"state": heater["state"], "fault": heater["fault"]}
            robot_busy = self.robot_busy()
            for mid, busy in ((ROBOT_ID, robot_busy), (SPECTROMETER_ID, False), (PL_ID, False)):
                state = "offline" if mid in self._offline else ("busy" if busy else "ok")
                modules[mid] = {"state": state, "fault": None}
            for vid in self._valves:
                state = "offline" if vid in self._offline else "ok"
                modules[vid] = {"state": state, "fault": None, "open": self._valves[vid]}
            ok = all(m["state"] in ("ok", "busy") for m in modules.values())
            return {"ok": ok, "modules": modules, "clock_s": self.clock.now()}

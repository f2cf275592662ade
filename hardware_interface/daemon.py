"""The lab daemon's core: device connections, error mapping, safety interlocks and waits.

The JSON-RPC handlers live in hardware_interface/handlers/ (one class per method group) and use
this core; `LabDaemon.methods()` is the explicit method table the HTTP server dispatches to.
Every handler validates its arguments against the lab configuration and the safety limits
before anything is sent to a device; `call` maps driver failures to the documented application
error codes (hardware_interface.errors); waits run on the lab's clock (the simulated clock in
--sim, so waits in the instant simulation cost no wall time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hardware_interface import lab_state, recovery, safety
from hardware_interface.devices.base import (
    ConnectionLost,
    DeviceBusy,
    DeviceError,
    DeviceFault,
    DeviceNotReady,
    DeviceRefused,
    DeviceTimeout,
    GarbledReply,
    LineDevice,
    RangeError,
)
from hardware_interface.devices.capabilities import HeaterState
from hardware_interface.devices.factory import build_driver
from hardware_interface.errors import (
    BUSY,
    DEVICE_ERROR,
    FAULT,
    LIMIT_EXCEEDED,
    NOT_READY,
    OFFLINE,
    UNKNOWN_MODULE,
    AppError,
)
from hardware_interface.handlers.auxiliary import AuxiliaryMethods
from hardware_interface.handlers.gripper import GripperMethods
from hardware_interface.handlers.heater import HeaterMethods
from hardware_interface.handlers.pumps import PumpMethods
from hardware_interface.handlers.reagents import ReagentMethods
from hardware_interface.handlers.robot import RobotMethods
from hardware_interface.handlers.spectrometers import SpectrometerMethods
from hardware_interface.handlers.system import SystemMethods
from hardware_interface.handlers.valves import ValveMethods
from hardware_interface.journal import Journal
from hardware_interface.jsonrpc import RpcError
from hardware_interface.labconfig import DeviceConfig, LabConfig
from hardware_interface.lease import LeaseBook, LeaseMethods
from hardware_interface.transports import TransportError

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_S = 1.0  # lab seconds between busy/stable polls while waiting
WATCH_CHUNK_S = 5.0  # lab seconds between heater safety reads during long waits
CD_DRIVERS = ("mcd1_cd_spectrometer", "jasco_j1500")  # spectrometer.cd goes to one of these


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> float: ...


class WallClock:
    """The real lab's clock: seconds since the daemon started."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return self.now()


class LabDaemon:
    """State and method handlers of the hardware daemon for one lab configuration.

    drivers: optional pre-built drivers by device id (test doubles); the others are built from
    the configuration. A device whose line is lost is reopened from its configuration.
    clock: the lab's clock (WallClock, or the SimLab's clock in simulation).
    journal_path: the daemon's journal file on the lab PC (hardware_interface.journal); None
    keeps it in memory (tests, throwaway simulations). It holds the lease, the stock ledger and
    the physical state the daemon believes the lab is in (hardware_interface.lab_state).
    """

    def __init__(
        self,
        config: LabConfig,
        clock: Clock,
        drivers: dict[str, Any] | None = None,
        poll_s: float = POLL_S,
        journal_path: Path | None = None,
    ) -> None:
        self.config = config
        self.journal = Journal(journal_path)
        self.lease = LeaseBook(self.journal, recover=self.recover_if_needed)
        self.clock = clock
        self.poll_s = poll_s
        self.limits = config.safety
        self.faults = safety.FaultBook()
        self._drivers: dict[str, Any] = {}
        # RPC threads and the watchdog may both try to reopen a lost line at the same moment
        self._connect_lock = threading.RLock()
        self.ledger_lock = threading.Lock()
        # The stock ledger survives a restart: the bottles did not refill while it was down.
        self.stock_mL = lab_state.load_stock(self.journal, config.reagents)
        self.valves = {
            vid: (d.id, ch) for d in config.devices.values() for vid, ch in d.valves.items()
        }
        kinds = {d.id: d.kind for d in config.devices.values()}
        self.pumps = [i for i, k in kinds.items() if k == "pump"]
        self.heater = next((i for i, k in kinds.items() if k == "heater"), None)
        self.robot = next((i for i, k in kinds.items() if k == "robot"), None)
        self.board = next((i for i, k in kinds.items() if k == "board"), None)
        # What the daemon believes each syringe holds, the heater's setpoint, the arm's place.
        self.belief = lab_state.BeliefStore(self.journal, self.pumps)
        by_driver = {d.driver: d.id for d in config.devices.values()}
        # the project's CD board or the JASCO J-1500 (through its export folder), first listed
        self.cd_spec = next((d.id for d in config.devices.values() if d.driver in CD_DRIVERS), None)
        self.abs_spec = by_driver.get("usb2000_seabreeze", self.cd_spec)
        self.pl_spec = by_driver.get("mpl1_pl_spectrometer")
        self._watchdog_stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        for dev in config.devices.values():
            if drivers is not None and dev.id in drivers:
                self._drivers[dev.id] = drivers[dev.id]
            else:
                self.connect(dev)

    # -- connection management -------------------------------------------------------------
    def connect(self, dev: DeviceConfig) -> bool:
        """(Re)open and identify one device; on failure mark it offline (retried on next use).

        An old driver is closed and its line reopened, since a USB serial device that was
        unplugged comes back as a new port that the old handle cannot reach.
        """
        with self._connect_lock:
            old = self._drivers.pop(dev.id, None)
            if old is not None:
                old.close()
            try:
                driver = build_driver(dev)
                self._drivers[dev.id] = driver
                if isinstance(driver, LineDevice):
                    driver.resync()  # tag 00 clears the device's reply cache of an earlier session
            except (TransportError, DeviceError) as exc:
                self.faults.set_offline(dev.id, str(exc))
                log.warning("%s offline: %s", dev.id, exc)
                return False
            self.faults.set_online(dev.id)
            return True

    def _driver(self, module: str) -> Any:
        """The driver of `module`, reconnecting an offline one; raises OFFLINE if still lost."""
        with self._connect_lock:
            if self.faults.offline(module) is not None or self._drivers.get(module) is None:
                if not self.connect(self.config.devices[module]):
                    raise self.faults.offline_error(module)
            return self._drivers[module]

    def close(self) -> None:
        self.stop_watchdog()
        for driver in self._drivers.values():
            driver.close()

    # -- the one place driver failures become JSON-RPC errors ------------------------------
    def call(self, module: str, action: Callable[[Any], T], check_fault: bool = True) -> T:
        if check_fault:
            self.faults.require_no_fault(module)
        driver = self._driver(module)
        try:
            return action(driver)
        except RangeError as exc:
            raise AppError(LIMIT_EXCEEDED, module, str(exc)) from exc
        except DeviceBusy as exc:
            raise AppError(BUSY, module, str(exc)) from exc
        except DeviceNotReady as exc:
            raise AppError(NOT_READY, module, str(exc)) from exc
        except DeviceFault as exc:
            if module == self.heater:
                # The board's own cut-out answers any command with a bare fault (ER 6); its
                # status tells why, and an over-temperature stops the whole lab with that reason.
                self._check_heater(driver)
            self.faults.latch(module, exc.detail)  # kept only if nothing was latched first
            fault = self.faults.fault(module) or exc.detail
            raise AppError(FAULT, module, f"{module}: in fault ({fault})", fault=fault) from exc
        except (ConnectionLost, DeviceTimeout, GarbledReply) as exc:
            self.faults.set_offline(module, str(exc))
            raise AppError(OFFLINE, module, f"{module}: line lost: {exc}") from exc
        except DeviceRefused as exc:
            raise AppError(DEVICE_ERROR, module, str(exc), device_code=exc.code) from exc

    def save_stock(self) -> None:
        """Persist the stock ledger after a change (the caller holds ``ledger_lock``)."""
        lab_state.save_stock(self.journal, self.stock_mL)

    def require(self, module: str | None, kind: str) -> str:
        if module is None:
            raise AppError(UNKNOWN_MODULE, kind, f"this lab has no {kind}")
        return module

    def pump_id(self, pump: str) -> str:
        if pump not in self.pumps:
            raise AppError(
                UNKNOWN_MODULE,
                safety.module_name(pump),
                f"unknown pump {safety.shown(pump)}; pumps: {self.pumps}",
            )
        return pump

    # -- safety ------------------------------------------------------------------------------
    def emergency_stop(self, reason: str, emergency: bool = True) -> list[str]:
        """Stop every pump and the heater (then everything else), latching a fault on them.

        ``emergency`` False is the same stop on a normal shutdown: the instruments are left
        safe all the same, but the log says so at INFO instead of raising an alarm.
        """
        if emergency:
            log.error("EMERGENCY STOP: %s", reason)
        else:
            log.info("stopping every pump and the heater: %s", reason)
        stopped = []
        order = [*self.pumps, *([self.heater] if self.heater else [])]
        order += [d for d in self.config.devices if d not in order]
        for module in order:
            driver = self._drivers.get(module)
            if driver is None:
                continue
            try:
                driver.stop()
                stopped.append(module)
                if module == self.heater:
                    self.belief.note_heater(None)  # the board's stop switches it off
            except DeviceError as exc:
                log.error("emergency stop of %s failed: %s", module, exc)
            if module in self.pumps or module == self.heater:
                self.faults.latch(module, reason)
        return stopped

    def heater_state(self, check_fault: bool = False) -> HeaterState:
        """Read the heater; an over-temperature reading triggers the emergency stop."""
        heater = self.require(self.heater, "heater")
        state = self.call(heater, lambda d: d.status(), check_fault=check_fault)
        self._stop_if_overtemperature(state)
        return state

    def _stop_if_overtemperature(self, state: HeaterState) -> None:
        heater = self.heater
        if safety.is_overtemperature(self.limits, state.temperature_C, state.tripped):
            if self.faults.fault(heater) is None:
                # The heater is named: a pump latched by this stop reports the reason too, and
                # an operator reading "SP1: in fault" must learn which module tripped it.
                self.emergency_stop(
                    f"{heater} over-temperature: {state.temperature_C:.1f} °C "
                    f"(trip at {self.limits.overtemp_trip_C} °C, board trip={state.tripped})"
                )

    def _check_heater(self, driver: Any) -> None:
        """After a fault reply from the heater: read it directly, stop the lab if it is hot."""
        try:
            state = driver.status()
        except DeviceError:
            return  # the fault reply itself is then all there is to report
        self._stop_if_overtemperature(state)

    def _safety_check(self) -> None:
        """Between chunks of a wait: read the heater; raise FAULT if the lab was stopped."""
        if self.heater is None:
            return
        self.heater_state()
        self.faults.require_no_fault(self.heater)

    def sleep_watching(self, seconds: float) -> None:
        end = self.clock.now() + seconds
        while True:
            remaining = end - self.clock.now()
            if remaining <= 0:
                return
            self.clock.sleep(min(remaining, WATCH_CHUNK_S))
            self._safety_check()

    def wait_until(
        self, done: Callable[[], bool], first_s: float, timeout_s: float, module: str, what: str
    ) -> None:
        start = self.clock.now()
        if first_s > 0:
            self.sleep_watching(first_s)
        while not done():
            if self.clock.now() - start > timeout_s:
                raise AppError(NOT_READY, module, f"{module}: {what} not reached in {timeout_s} s")
            self.sleep_watching(self.poll_s)

    def start_watchdog(self, period_s: float) -> None:
        """Poll the heater every `period_s` wall seconds so an overshoot is caught between calls."""
        if self.heater is None or period_s <= 0 or self._watchdog is not None:
            return
        self._watchdog_stop.clear()

        def run() -> None:
            while not self._watchdog_stop.wait(period_s):
                if self.faults.fault(self.heater) is not None:  # type: ignore[arg-type]
                    continue
                try:
                    self.heater_state()
                except RpcError as exc:
                    log.warning("watchdog: %s", exc)

        self._watchdog = threading.Thread(target=run, name="heater-watchdog", daemon=True)
        self._watchdog.start()

    def stop_watchdog(self) -> None:
        self._watchdog_stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5.0)
            self._watchdog = None

    def module_state(self, module: str, busy: bool = False) -> dict[str, Any]:
        fault = self.faults.fault(module)
        lost = self.faults.offline(module)
        if fault is not None:
            return {"state": "fault", "fault": fault}
        if lost is not None:
            return {"state": "offline", "fault": lost}
        return {"state": "busy" if busy else "ok", "fault": None}

    # -- the lab's state and its recovery -----------------------------------------------------
    def survey(self) -> lab_state.Survey:
        """Read the lab, reconcile the journal with it, judge whether it is idle (system.state)."""
        return lab_state.survey(self)

    def recover_if_needed(self, holder: str) -> list[str]:
        """Bring a lab that is not idle to its idle state before `holder` drives it; the steps
        taken, one sentence each ([] when it was idle). Raises FAULT / OFFLINE naming a module
        the recovery needs that is in a latched fault or not connected (nothing is done then),
        NOT_READY when the steps did not make it idle (hardware_interface.recovery)."""
        return recovery.recover(self, holder)

    # -- the method table --------------------------------------------------------------------
    def methods(self) -> dict[str, Callable[..., Any]]:
        """The explicit JSON-RPC method table (wire name -> handler)."""
        system = SystemMethods(self)
        pumps = PumpMethods(self)
        heater = HeaterMethods(self)
        robot = RobotMethods(self)
        gripper = GripperMethods(self)
        spectrometers = SpectrometerMethods(self)
        valves = ValveMethods(self)
        auxiliary = AuxiliaryMethods(self)
        reagents = ReagentMethods(self)
        lease = LeaseMethods(self.lease)
        return {
            "lease.acquire": lease.lease_acquire,
            "lease.renew": lease.lease_renew,
            "lease.release": lease.lease_release,
            "lease.status": lease.lease_status,
            "system.describe": system.system_describe,
            "system.status": system.system_status,
            "system.state": system.system_state,
            "system.stop": system.system_stop,
            "system.wait": system.system_wait,
            "system.reset_faults": system.system_reset_faults,
            "pump.fill": pumps.pump_fill,
            "pump.infuse": pumps.pump_infuse,
            "pump.withdraw": pumps.pump_withdraw,
            "pump.parallel": pumps.pump_parallel,
            "pump.stop": pumps.pump_stop,
            "pump.status": pumps.pump_status,
            "reagent.refill": reagents.reagent_refill,
            "reagent.stock": reagents.reagent_stock,
            "heater.set": heater.heater_set,
            "heater.status": heater.heater_status,
            "heater.off": heater.heater_off,
            "heater.pid": heater.heater_pid,
            "robot.move": robot.robot_move,
            "robot.status": robot.robot_status,
            "gripper.activate": gripper.gripper_activate,
            "gripper.move": gripper.gripper_move,
            "gripper.grip": gripper.gripper_grip,
            "gripper.stop": gripper.gripper_stop,
            "gripper.status": gripper.gripper_status,
            "spectrometer.absorbance": spectrometers.spectrometer_absorbance,
            "spectrometer.cd": spectrometers.spectrometer_cd,
            "spectrometer.pl": spectrometers.spectrometer_pl,
            "valve.set": valves.valve_set,
            "peristaltic.set": auxiliary.peristaltic_set,
            "peristaltic.status": auxiliary.peristaltic_status,
            "stepper.move": auxiliary.stepper_move,
            "stepper.status": auxiliary.stepper_status,
        }

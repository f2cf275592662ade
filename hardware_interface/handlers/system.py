"""system.*: describe the lab, report status, emergency stop, wait, reset faults."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.devices.arduino_board import MAX_SPEED_STEPS_S, MAX_STEPS
from hardware_interface.devices.heater_board import PERISTALTIC_MAX_RPM
from hardware_interface.devices.robotiq_2f85 import CLOSED, OPEN
from hardware_interface.errors import ERROR_CODES
from hardware_interface.jsonrpc import RpcError

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon


class SystemMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def system_describe(self) -> dict[str, Any]:
        """Modules with their kind, limits and units; reagents with their stock (mL)."""
        modules: dict[str, Any] = {}
        lim = self.lab.limits
        for dev in self.lab.config.devices.values():
            entry: dict[str, Any] = {"kind": dev.kind, "driver": dev.driver, "port": dev.port}
            if dev.kind == "pump":
                rate_max = min(dev.max_rate_mL_min, lim.max_flow_mL_min)
                entry |= {
                    "reagent": dev.reagent,
                    "capacity_mL": dev.capacity_mL,
                    "limits": {
                        "volume_mL": [0.0, dev.capacity_mL],
                        "rate_mL_min": [0.001, rate_max],
                    },
                    "units": {"volume": "mL", "rate": "mL/min"},
                }
            elif dev.kind == "heater":
                entry |= {
                    "limits": {
                        "setpoint_C": [lim.min_setpoint_C, lim.max_setpoint_C],
                        "ramp_C_min": [0.1, lim.max_ramp_C_min],
                        "overtemp_trip_C": lim.overtemp_trip_C,
                        "peristaltic_rpm": [-PERISTALTIC_MAX_RPM, PERISTALTIC_MAX_RPM],
                    },
                    "units": {
                        "temperature": "°C",
                        "ramp": "°C/min",
                        "power": "%",
                        "peristaltic": "rpm",
                    },  # fmt: skip
                }
            elif dev.kind == "robot":
                entry |= {"positions": list(dev.positions), "limits": {}, "units": {"time": "s"}}
            elif dev.kind == "spectrometer":
                measures = {
                    "mcd1_cd_spectrometer": ["absorbance", "cd"],
                    "jasco_j1500": ["absorbance", "cd"],
                    "mpl1_pl_spectrometer": ["pl"],
                    "usb2000_seabreeze": ["absorbance"],
                }[dev.driver]
                entry |= {
                    "measures": measures,
                    "limits": {"integration_ms": [1.0, 10000.0]},
                    "units": {"wavelength": "nm", "cd": "mdeg", "absorbance": "OD"},
                }
            elif dev.kind == "gripper":
                entry |= {
                    "limits": {"position": [OPEN, CLOSED], "speed": [0, 255], "force": [0, 255]},
                    "units": {
                        "position": "counts (0 open, 255 closed)",
                        "speed": "counts (255 fastest)",
                        "force": "counts (255 strongest)",
                    },
                }
            else:  # a board: its valves are listed as their own modules
                entry |= {
                    "valves": dict(dev.valves),
                    "limits": {
                        "steps": [-MAX_STEPS, MAX_STEPS],
                        "speed_steps_s": [1.0, MAX_SPEED_STEPS_S],
                    },  # fmt: skip
                    "units": {"stepper": "steps", "speed": "steps/s"},
                }
            modules[dev.id] = entry
        for vid, (board, channel) in self.lab.valves.items():
            modules[vid] = {"kind": "valve", "board": board, "channel": channel, "limits": {},
                            "units": {}}  # fmt: skip
        with self.lab.ledger_lock:
            reagents = {
                name: {"stock_mL": round(ml, 6), "aliases": self.lab.config.aliases_of(name)}
                for name, ml in self.lab.stock_mL.items()
            }
        return {
            "lab": self.lab.config.lab,
            "simulated": self.lab.config.simulated,
            "chemistry": self.lab.config.chemistry,
            "modules": modules,
            "reagents": reagents,
            "safety": asdict(self.lab.limits),
            "error_codes": {str(code): text for code, text in ERROR_CODES.items()},
        }

    def system_status(self) -> dict[str, Any]:
        """State of every module (ok, busy, fault, offline) and the lab clock (s)."""
        modules: dict[str, Any] = {}
        for dev in self.lab.config.devices.values():
            extra: dict[str, Any] = {}
            busy = False
            try:
                if dev.kind == "pump":
                    state = self.lab.call(dev.id, lambda d: d.status(), check_fault=False)
                    busy, extra = state.busy, {"volume_mL": round(state.volume_mL, 6)}
                elif dev.kind == "heater":
                    hs = self.lab.heater_state()
                    extra = {"temperature_C": hs.temperature_C, "setpoint_C": hs.setpoint_C,
                             "stable": hs.stable}  # fmt: skip
                elif dev.kind == "robot":
                    where, busy = self.lab.call(dev.id, lambda d: d.position(), check_fault=False)
                    extra = {"position": where}
                elif dev.kind == "gripper":
                    grip = self.lab.call(dev.id, lambda d: d.status(), check_fault=False)
                    busy, extra = grip.busy, {"position": grip.position}
                elif dev.kind == "board":
                    opened = self.lab.call(dev.id, lambda d: d.valves(), check_fault=False)
                    for vid, (_, channel) in self.lab.valves.items():
                        if self.lab.valves[vid][0] == dev.id:
                            extra[vid] = opened[channel - 1]
                elif dev.driver != "usb2000_seabreeze":
                    self.lab.call(dev.id, lambda d: d.identify(), check_fault=False)
            except RpcError:
                pass  # the failure is now recorded in the fault book, reported below
            modules[dev.id] = {**self.lab.module_state(dev.id, busy), **extra}
        for vid, (board, _) in self.lab.valves.items():
            modules[vid] = {**self.lab.module_state(board), "open": modules[board].get(vid)}
        ok = all(m["state"] in ("ok", "busy") for m in modules.values())
        return {"ok": ok, "modules": modules, "clock_s": self.lab.clock.now()}

    def system_state(self) -> dict[str, Any]:
        """The lab's physical state: what the instruments report next to what the daemon's
        journal believes, whether the lab is idle (and why not), and where the two disagreed.

        {"pumps": {id: {"volume_mL" (the pump's report; null: unreadable), "capacity_mL",
        "reagent" (journal, else the plumbed one; null when empty), "believed_volume_mL"
        (journal, before this reading; null: no record), "busy", "state", "fault"}},
        "heater": {"module", "setpoint_C", "temperature_C", "on", "stable", "state", "fault"}
        or null, "robot": {"module", "position", "busy", "state", "fault"} or null,
        "idle", "not_idle": [sentences], "discrepancies": [{"module", "quantity", "journal",
        "instrument", "message"}], "reconciled" (false while a moving call was executing:
        nothing compared), "clock_s"}.
        """
        survey = self.lab.survey()
        reading, belief = survey.reading, survey.belief
        pumps: dict[str, Any] = {}
        for pump, got in reading.pumps.items():
            content = belief.syringes.get(pump)
            before = survey.before.syringes.get(pump)
            pumps[pump] = {
                "volume_mL": None if got.volume_mL is None else round(got.volume_mL, 6),
                "capacity_mL": self.lab.config.devices[pump].capacity_mL,
                "reagent": content.reagent if content is not None and content.loaded else None,
                "believed_volume_mL": None if before is None else round(before.volume_mL, 6),
                "busy": got.busy,
                **self.lab.module_state(pump, got.busy),
            }
        heater = None
        if self.lab.heater is not None and reading.heater is not None:
            hs = reading.heater
            on = (hs.setpoint_C is not None) if hs.readable else None
            heater = {
                "module": self.lab.heater,
                "setpoint_C": hs.setpoint_C,
                "temperature_C": hs.temperature_C,
                "on": on,
                "stable": hs.stable,
                **self.lab.module_state(self.lab.heater),
            }
        robot = None
        if self.lab.robot is not None and reading.arm is not None:
            robot = {
                "module": self.lab.robot,
                "position": reading.arm.position,
                "busy": reading.arm.busy,
                **self.lab.module_state(self.lab.robot, reading.arm.busy),
            }
        return {
            "pumps": pumps,
            "heater": heater,
            "robot": robot,
            "idle": survey.idle,
            "not_idle": survey.not_idle,
            "discrepancies": [d.to_json() for d in survey.discrepancies],
            "reconciled": survey.reconciled,
            "clock_s": self.lab.clock.now(),
        }

    def system_stop(self) -> dict[str, Any]:
        """Emergency stop: all pumps stop, heater off; faults latch until system.reset_faults."""
        return {"stopped": self.lab.emergency_stop("emergency stop requested (system.stop)")}

    def system_wait(self, seconds: float) -> dict[str, Any]:
        """Wait `seconds` (s) on the lab clock, reading the heater for safety meanwhile."""
        safety.check_wait("system", "seconds", seconds)
        self.lab.sleep_watching(seconds)
        return {"clock_s": self.lab.clock.now()}

    def system_reset_faults(self) -> dict[str, Any]:
        """Clear latched faults (after an emergency stop) and retry offline modules."""
        cleared = self.lab.faults.reset()
        for dev in self.lab.config.devices.values():
            if self.lab.faults.offline(dev.id) is not None:
                self.lab.connect(dev)
        return {"cleared": cleared}

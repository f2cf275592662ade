"""Lab configuration: which device is where, with which driver and limits.

A JSON file (see hardware_interface/examples/lab_real.json and lab_sim.json):

    {
      "lab": "MAOSIC lab PC",
      "safety": {"max_setpoint_C": 200, "overtemp_trip_C": 210, "max_flow_mL_min": 2.0,
                 "max_ramp_C_min": 60, "require_stable_heater": true},
      "reagents": {"Cs-oleate": {"stock_mL": 50.0, "aliases": ["Cs-Precursor"]}, ...},
      "devices": {
        "SP1": {"driver": "msp1_syringe_pump", "port": "/dev/ttyUSB0",
                "reagent": "Cs-oleate", "capacity_mL": 0.5, "max_rate_mL_min": 2.0},
        "H1":  {"driver": "mhb1_heater_board", "port": "/dev/ttyACM0"},
        "AB1": {"driver": "mab1_arduino_board", "port": "/dev/ttyACM1",
                "valves": {"V1": 1, "V2": 2}},
        "CR1": {"driver": "mra1_robot_arm", "port": "tcp://192.168.1.20:30010"},
        "SPEC1": {"driver": "mcd1_cd_spectrometer", "port": "/dev/ttyUSB3"},
        "PL1": {"driver": "mpl1_pl_spectrometer", "port": "/dev/ttyUSB4"}
      }
    }

Ports: a device path ("/dev/ttyUSB0", "COM3" on Windows), any pyserial URL, or tcp://HOST:PORT.
Vendor instruments (issue 23): "chemyx_fusion6000" pumps (with "diameter_mm"), "watlow_f4t"
heaters (Modbus: tcp://HOST:502 or a serial port; "unit", "loop"), "robotiq_2f85" grippers
("unit"); see examples/lab_sdfl_windows.json and lab_sdfl_sim.json. A "jasco_j1500" CD
spectrometer has no port: it is reached through its vendor software's export folder
(devices/jasco_export.py), with "export_dir" (the folder Spectra Manager exports spectra to) and
one trigger, either "command" (an argv list run without a shell) or "macro_file" with
"macro_dir" (a macro copied into the folder the software watches); optional "settle_s" (2.0: a
new file counts once unchanged this long) and "ht_limit_V" (800: a higher photomultiplier
voltage marks the spectrum saturated); see examples/lab_maosic_windows.json. Its "timeout_s" is
how long one measurement may take (540 s unless given). Relative paths are taken from the
daemon's working directory.

Optional per device: "baudrate" (115200, or the vendor's default for the vendor drivers),
"timeout_s" (1.0), "retries" (2). Errors name the file
and the JSON path of the offending entry. `sim_config` builds the simulated lab's configuration
without any file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware_interface.safety import SafetyLimits

# driver name -> module kind shown by system.describe
DRIVER_KINDS: dict[str, str] = {
    "msp1_syringe_pump": "pump",
    "mhb1_heater_board": "heater",
    "mab1_arduino_board": "board",
    "mra1_robot_arm": "robot",
    "mcd1_cd_spectrometer": "spectrometer",
    "mpl1_pl_spectrometer": "spectrometer",
    "usb2000_seabreeze": "spectrometer",
    "chemyx_fusion6000": "pump",
    "watlow_f4t": "heater",
    "robotiq_2f85": "gripper",
    "jasco_j1500": "spectrometer",
}

# The line speed a driver opens with when the lab file names none (each vendor's default).
DEFAULT_BAUDRATES: dict[str, int] = {
    "chemyx_fusion6000": 9600,
    "watlow_f4t": 9600,
    "robotiq_2f85": 115200,
}
# Modbus drivers: the unit (slave) address used when the lab file names none.
DEFAULT_UNITS: dict[str, int] = {"watlow_f4t": 1, "robotiq_2f85": 9}
# How long one call may wait on the device when the lab file names no timeout_s (s). A CD scan
# through the JASCO software takes minutes; 540 s stays below the core's 600 s call timeout
# (maosic/hardware.py), so that the daemon's own "no export" error reaches the core first.
DEFAULT_TIMEOUTS: dict[str, float] = {"jasco_j1500": 540.0}
# Drivers that need no port (reached through a library or a folder, not a line).
PORTLESS_DRIVERS = ("usb2000_seabreeze", "jasco_j1500")
PUMP_DRIVERS = ("msp1_syringe_pump", "chemyx_fusion6000")

_DEVICE_KEYS = {
    "driver", "port", "baudrate", "timeout_s", "retries",
    "reagent", "capacity_mL", "max_rate_mL_min", "valves", "positions", "serial",
    "diameter_mm", "unit", "loop",
    "export_dir", "command", "macro_file", "macro_dir", "settle_s", "ht_limit_V",
}  # fmt: skip
_JASCO_KEYS = ("export_dir", "command", "macro_file", "macro_dir", "settle_s", "ht_limit_V")
_SAFETY_KEYS = {
    "min_setpoint_C", "max_setpoint_C", "overtemp_trip_C", "max_ramp_C_min",
    "max_flow_mL_min", "require_stable_heater",
}  # fmt: skip


class ConfigError(ValueError):
    """A lab configuration problem; the message names the source and the JSON path."""


@dataclass(frozen=True)
class DeviceConfig:
    """One device: `id` is the module id (SP1, H1, ...), `port` a serial path/URL or tcp://."""

    id: str
    driver: str
    port: str
    baudrate: int = 115200
    timeout_s: float = 1.0
    retries: int = 2
    reagent: str | None = None  # pumps: the stock bottle its line draws from
    capacity_mL: float = 0.5  # pumps: syringe volume
    max_rate_mL_min: float = 2.0  # pumps
    valves: dict[str, int] = field(default_factory=dict)  # boards: valve module id -> channel
    positions: tuple[str, ...] = ("home", "sampler", "abs", "cd", "waste")  # robots
    serial: str | None = None  # seabreeze: pick one spectrometer by serial number
    diameter_mm: float | None = None  # Chemyx: syringe inner diameter (mm), required there
    unit: int = 1  # Modbus drivers: the unit (slave) address
    loop: int = 1  # Watlow F4T: the control loop driving the heater
    # JASCO J-1500 (jasco_j1500): the vendor software's export folder and the trigger of a
    # measurement, a command (argv, no shell) or a macro file dropped into macro_dir.
    export_dir: str | None = None
    command: tuple[str, ...] | None = None
    macro_file: str | None = None
    macro_dir: str | None = None
    settle_s: float = 2.0  # JASCO: a new export counts once unchanged this long (s)
    ht_limit_V: float = 800.0  # JASCO: photomultiplier voltage above which data is saturated

    @property
    def kind(self) -> str:
        return DRIVER_KINDS[self.driver]


@dataclass(frozen=True)
class LabConfig:
    lab: str
    devices: dict[str, DeviceConfig]
    reagents: dict[str, float]  # name -> stock volume, mL
    safety: SafetyLimits
    simulated: bool = False
    chemistry: str | None = None
    # Other names a reaction may use for a stock bottle (the paper's "Cs-Precursor" for the
    # bottle of Cs-oleate): alias -> the bottle's name. Resolved by the daemon on every call.
    reagent_aliases: dict[str, str] = field(default_factory=dict)

    def reagent_name(self, name: str) -> str:
        """The stock bottle ``name`` means (itself, or the bottle it is an alias of)."""
        return self.reagent_aliases.get(name, name) if isinstance(name, str) else name

    def aliases_of(self, bottle: str) -> list[str]:
        return sorted(a for a, b in self.reagent_aliases.items() if b == bottle)

    def of_kind(self, kind: str) -> list[DeviceConfig]:
        return [d for d in self.devices.values() if d.kind == kind]


def _need(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {message}")


def _number(value: Any, where: str, positive: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    _need(ok and (value > 0 or not positive), where, f"must be a positive number, got {value!r}")
    return float(value)


def _device(dev_id: str, raw: Any, where: str) -> DeviceConfig:
    _need(isinstance(raw, dict), where, "must be an object")
    unknown = set(raw) - _DEVICE_KEYS
    _need(not unknown, where, f"unknown keys {sorted(unknown)}")
    driver = raw.get("driver")
    _need(
        isinstance(driver, str) and driver in DRIVER_KINDS,  # a list/dict is unhashable
        f"{where}.driver",
        f"{driver!r} is not one of {sorted(DRIVER_KINDS)}",
    )
    port = raw.get("port", "")
    _need(isinstance(port, str) and (port or driver in PORTLESS_DRIVERS), f"{where}.port",
          "must be a non-empty string (device path, serial URL or tcp://HOST:PORT)")  # fmt: skip
    kwargs: dict[str, Any] = {"id": dev_id, "driver": driver, "port": port}
    if driver in DEFAULT_BAUDRATES:
        kwargs["baudrate"] = DEFAULT_BAUDRATES[driver]
    if driver in DEFAULT_UNITS:
        kwargs["unit"] = DEFAULT_UNITS[driver]
    if driver in DEFAULT_TIMEOUTS:
        kwargs["timeout_s"] = DEFAULT_TIMEOUTS[driver]
    if "baudrate" in raw:
        kwargs["baudrate"] = int(_number(raw["baudrate"], f"{where}.baudrate"))
    for key in ("timeout_s", "capacity_mL", "max_rate_mL_min", "diameter_mm"):
        if key in raw:
            kwargs[key] = _number(raw[key], f"{where}.{key}")
    if "retries" in raw:
        retries = raw["retries"]
        _need(isinstance(retries, int) and 0 <= retries <= 10, f"{where}.retries", "must be 0..10")
        kwargs["retries"] = retries
    for key, low, high in (("unit", 0, 247), ("loop", 1, 4)):
        if key in raw:
            value = raw[key]
            _need(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
                  f"{where}.{key}", f"must be an integer {low}..{high}")  # fmt: skip
            kwargs[key] = value
    if driver == "chemyx_fusion6000":
        _need("diameter_mm" in raw, f"{where}.diameter_mm",
              "a Chemyx pump needs its syringe's inner diameter (mm)")  # fmt: skip
    if driver in PUMP_DRIVERS:
        _need(isinstance(raw.get("reagent"), str), f"{where}.reagent", "a pump needs its reagent")
        kwargs["reagent"] = raw["reagent"]
    if "valves" in raw:
        valves = raw["valves"]
        _need(isinstance(valves, dict) and all(v in (1, 2) for v in valves.values()),
              f"{where}.valves", "must map valve ids to channels 1 or 2")  # fmt: skip
        kwargs["valves"] = dict(valves)
    if "positions" in raw:
        positions = raw["positions"]
        _need(isinstance(positions, list) and all(isinstance(p, str) for p in positions),
              f"{where}.positions", "must be a list of names")  # fmt: skip
        kwargs["positions"] = tuple(positions)
    if "serial" in raw:
        kwargs["serial"] = str(raw["serial"])
    if driver == "jasco_j1500":
        kwargs |= _jasco(raw, where)
    else:
        misplaced = sorted(k for k in _JASCO_KEYS if k in raw)
        _need(not misplaced, where, f"keys {misplaced} are for a jasco_j1500 only")
    return DeviceConfig(**kwargs)


def _path(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    _need(value is None or (isinstance(value, str) and value.strip() != ""), f"{where}.{key}",
          "must be a non-empty path")  # fmt: skip
    return value


def _jasco(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The export folder and the one trigger of a JASCO J-1500 (devices/jasco_export.py)."""
    export_dir = _path(raw, "export_dir", where)
    _need(export_dir is not None, f"{where}.export_dir",
          "a jasco_j1500 needs the folder its software exports spectra to")  # fmt: skip
    command = raw.get("command")
    if command is not None:
        _need(isinstance(command, list) and command
              and all(isinstance(a, str) and a for a in command), f"{where}.command",
              "must be a non-empty list of strings (the program, then its arguments)")  # fmt: skip
        command = tuple(command)
    macro_file = _path(raw, "macro_file", where)
    macro_dir = _path(raw, "macro_dir", where)
    _need((command is None) != (macro_file is None), where,
          'give exactly one trigger: "command" or "macro_file"')  # fmt: skip
    _need((macro_file is None) == (macro_dir is None), f"{where}.macro_dir",
          '"macro_file" and "macro_dir" (the folder the software watches) go together')  # fmt: skip
    found: dict[str, Any] = {"export_dir": export_dir, "command": command,
                             "macro_file": macro_file, "macro_dir": macro_dir}  # fmt: skip
    for key in ("settle_s", "ht_limit_V"):
        if key in raw:
            found[key] = _number(raw[key], f"{where}.{key}")
    return found


def parse_config(data: Any, source: str = "lab config") -> LabConfig:
    """Validate decoded JSON into a LabConfig; ConfigError names `source` and the path."""
    _need(isinstance(data, dict), source, "must be a JSON object")
    devices_raw = data.get("devices")
    _need(
        isinstance(devices_raw, dict) and devices_raw,
        f"{source}: devices",
        "must be a non-empty object",
    )
    devices = {k: _device(k, v, f"{source}: devices.{k}") for k, v in devices_raw.items()}
    valve_ids = [v for d in devices.values() for v in d.valves]
    clash = (set(valve_ids) & set(devices)) | {v for v in valve_ids if valve_ids.count(v) > 1}
    _need(not clash, f"{source}: devices", f"valve ids {sorted(clash)} are used twice")
    reagents_raw = data.get("reagents", {})
    _need(isinstance(reagents_raw, dict), f"{source}: reagents", "must be an object")
    reagents: dict[str, float] = {}
    aliases: dict[str, str] = {}
    for name, entry in reagents_raw.items():
        where = f"{source}: reagents.{name}"
        _need(isinstance(entry, dict) and "stock_mL" in entry, where,
              'must be {"stock_mL": number, "aliases"?: [names]}')  # fmt: skip
        unknown = set(entry) - {"stock_mL", "aliases"}
        _need(not unknown, where, f"unknown keys {sorted(unknown)}")
        reagents[name] = _number(entry["stock_mL"], f"{where}.stock_mL", False)
        names = entry.get("aliases", [])
        _need(isinstance(names, list) and all(isinstance(a, str) and a for a in names),
              f"{where}.aliases", "must be a list of names")  # fmt: skip
        for alias in names:
            _need(alias not in aliases and alias not in reagents_raw, f"{where}.aliases",
                  f"{alias!r} already names a stock bottle")  # fmt: skip
            aliases[alias] = name
    for dev in devices.values():
        if dev.reagent is not None:
            _need(dev.reagent in reagents, f"{source}: devices.{dev.id}.reagent",
                  f"{dev.reagent!r} has no entry in reagents")  # fmt: skip
    safety_raw = data.get("safety", {})
    _need(isinstance(safety_raw, dict), f"{source}: safety", "must be an object")
    unknown = set(safety_raw) - _SAFETY_KEYS
    _need(not unknown, f"{source}: safety", f"unknown keys {sorted(unknown)}")
    try:
        safety = SafetyLimits(**safety_raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: safety: {exc}") from exc
    lab = data.get("lab", "MAOSIC lab")
    _need(isinstance(lab, str), f"{source}: lab", "must be a string")
    return LabConfig(
        lab=lab, devices=devices, reagents=reagents, safety=safety, reagent_aliases=aliases
    )


def load_config(path: str | Path) -> LabConfig:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read lab config {path}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"lab config {path} is not valid JSON: {exc}") from exc
    return parse_config(data, str(path))


def sim_config_data(chemistry: str = "cspbbr3", lab_key: str = "sim") -> dict[str, Any]:
    """The simulated lab's configuration as JSON data, ports on maosicsim://<lab_key>/<id>."""
    from hardware_interface.sim import rig  # the physics package; only the sim needs it

    spec = rig.RIGS.get(chemistry)
    if spec is None:
        raise ConfigError(f"unknown chemistry {chemistry!r}; choose from {sorted(rig.RIGS)}")

    def port(dev_id: str) -> str:
        return f"maosicsim://{lab_key}/{dev_id}"

    # Sim lines answer in microseconds; a short timeout keeps fault-injection tests quick.
    fast = {"timeout_s": 0.1, "retries": 2}
    devices: dict[str, Any] = {
        pump: {"driver": "msp1_syringe_pump", "port": port(pump), "reagent": reagent,
               "capacity_mL": spec.syringe_mL, "max_rate_mL_min": spec.max_rate_mL_min, **fast}
        for pump, reagent in spec.pump_reagents.items()
    }  # fmt: skip
    devices["H1"] = {"driver": "mhb1_heater_board", "port": port("H1"), **fast}
    valves = {v: i + 1 for i, v in enumerate(rig.VALVE_IDS)}
    devices["AB1"] = {"driver": "mab1_arduino_board", "port": port("AB1"), "valves": valves, **fast}
    devices["CR1"] = {"driver": "mra1_robot_arm", "port": port("CR1"), **fast}
    devices["SPEC1"] = {"driver": "mcd1_cd_spectrometer", "port": port("SPEC1"), **fast}
    devices["PL1"] = {"driver": "mpl1_pl_spectrometer", "port": port("PL1"), **fast}
    return {
        "lab": f"MAOSIC simulated lab ({chemistry})",
        "safety": {"max_setpoint_C": rig.HEATER_MAX_C, "overtemp_trip_C": rig.HEATER_MAX_C + 10.0,
                   "max_ramp_C_min": rig.HEATER_RAMP_MAX_C_MIN,
                   "max_flow_mL_min": spec.max_rate_mL_min, "require_stable_heater": True},
        "reagents": {name: {"stock_mL": ml, "aliases": list(spec.aliases.get(name, ()))}
                     for name, ml in spec.stock_mL.items()},
        "devices": devices,
    }  # fmt: skip


def sim_config(chemistry: str = "cspbbr3", lab_key: str = "sim") -> LabConfig:
    config = parse_config(sim_config_data(chemistry, lab_key), f"simulated lab ({chemistry})")
    return LabConfig(
        config.lab,
        config.devices,
        config.reagents,
        config.safety,
        True,
        chemistry,
        config.reagent_aliases,
    )

"""Build a driver instance from a DeviceConfig: the explicit driver table of the daemon."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hardware_interface.devices.arduino_board import ArduinoBoard
from hardware_interface.devices.base import LineDevice
from hardware_interface.devices.chemyx_fusion import ChemyxFusion6000
from hardware_interface.devices.heater_board import HeaterBoard
from hardware_interface.devices.jasco_export import JascoJ1500Export
from hardware_interface.devices.modbus_link import open_modbus
from hardware_interface.devices.robot_arm import RobotArm
from hardware_interface.devices.robotiq_2f85 import Robotiq2F85
from hardware_interface.devices.seabreeze_absorbance import SeabreezeAbsorbance
from hardware_interface.devices.spectrometers import CdSpectrometer, PlSpectrometer
from hardware_interface.devices.syringe_pump import SyringePump
from hardware_interface.devices.watlow_f4t import WatlowF4T
from hardware_interface.labconfig import DeviceConfig
from hardware_interface.transports import open_transport

wire_log = logging.getLogger("hardware_interface.wire")


def _pump(cfg: DeviceConfig) -> SyringePump:
    return SyringePump(
        open_transport(cfg.port, cfg.baudrate),
        cfg.id,
        capacity_mL=cfg.capacity_mL,
        max_rate_mL_min=cfg.max_rate_mL_min,
        timeout_s=cfg.timeout_s,
        retries=cfg.retries,
    )


def _heater(cfg: DeviceConfig) -> HeaterBoard:
    return HeaterBoard(open_transport(cfg.port, cfg.baudrate), cfg.id, cfg.timeout_s, cfg.retries)


def _arduino(cfg: DeviceConfig) -> ArduinoBoard:
    return ArduinoBoard(open_transport(cfg.port, cfg.baudrate), cfg.id, cfg.timeout_s, cfg.retries)


def _robot(cfg: DeviceConfig) -> RobotArm:
    return RobotArm(
        open_transport(cfg.port, cfg.baudrate), cfg.id, cfg.positions, cfg.timeout_s, cfg.retries
    )


def _cd(cfg: DeviceConfig) -> CdSpectrometer:
    return CdSpectrometer(
        open_transport(cfg.port, cfg.baudrate), cfg.id, max(cfg.timeout_s, 0.5), cfg.retries
    )


def _pl(cfg: DeviceConfig) -> PlSpectrometer:
    return PlSpectrometer(
        open_transport(cfg.port, cfg.baudrate), cfg.id, max(cfg.timeout_s, 0.5), cfg.retries
    )


def _seabreeze(cfg: DeviceConfig) -> SeabreezeAbsorbance:
    return SeabreezeAbsorbance(cfg.id, cfg.serial)


def _chemyx(cfg: DeviceConfig) -> ChemyxFusion6000:
    assert cfg.diameter_mm is not None  # labconfig requires it for this driver
    pump = ChemyxFusion6000(
        open_transport(cfg.port, cfg.baudrate),
        cfg.id,
        capacity_mL=cfg.capacity_mL,
        diameter_mm=cfg.diameter_mm,
        max_rate_mL_min=cfg.max_rate_mL_min,
        timeout_s=cfg.timeout_s,
    )
    _identify_or_close(pump)
    return pump


def _identify_or_close(driver: Any) -> None:
    """Ask a vendor instrument who it is on connect, so a silent or misconfigured one (an F4T
    reading °F) is reported offline at once; its line is closed if it fails."""
    try:
        driver.identify()
    except Exception:
        driver.close()
        raise


def _modbus_trace(name: str) -> Callable[[bool, bytes], bytes]:
    def trace(sending: bool, data: bytes) -> bytes:
        if wire_log.isEnabledFor(logging.DEBUG):
            wire_log.debug("%s %s %s", name, ">" if sending else "<", data.hex(" "))
        return data

    return trace


def _watlow(cfg: DeviceConfig) -> WatlowF4T:
    client = open_modbus(cfg.port, cfg.baudrate, cfg.timeout_s, cfg.retries, _modbus_trace(cfg.id))
    heater = WatlowF4T(client, cfg.id, unit=cfg.unit, loop=cfg.loop)
    _identify_or_close(heater)
    return heater


def _robotiq(cfg: DeviceConfig) -> Robotiq2F85:
    client = open_modbus(cfg.port, cfg.baudrate, cfg.timeout_s, cfg.retries, _modbus_trace(cfg.id))
    gripper = Robotiq2F85(client, cfg.id, unit=cfg.unit)
    _identify_or_close(gripper)
    return gripper


def _jasco(cfg: DeviceConfig) -> JascoJ1500Export:
    # a missing export folder raises DeviceError: the module is offline until it exists
    return JascoJ1500Export(
        cfg.id,
        cfg.export_dir or "",
        command=None if cfg.command is None else list(cfg.command),
        macro_file=cfg.macro_file,
        macro_dir=cfg.macro_dir,
        timeout_s=cfg.timeout_s,
        settle_s=cfg.settle_s,
        ht_limit_V=cfg.ht_limit_V,
    )


DRIVER_FACTORIES: dict[str, Callable[[DeviceConfig], Any]] = {
    "msp1_syringe_pump": _pump,
    "mhb1_heater_board": _heater,
    "mab1_arduino_board": _arduino,
    "mra1_robot_arm": _robot,
    "mcd1_cd_spectrometer": _cd,
    "mpl1_pl_spectrometer": _pl,
    "usb2000_seabreeze": _seabreeze,
    "chemyx_fusion6000": _chemyx,
    "watlow_f4t": _watlow,
    "robotiq_2f85": _robotiq,
    "jasco_j1500": _jasco,
}


def _log_exchange(name: str, request: bytes, reply: bytes) -> None:
    if wire_log.isEnabledFor(logging.DEBUG):
        wire_log.debug("%s > %r < %r", name, request, reply[:200])


def build_driver(cfg: DeviceConfig) -> Any:
    """Open the transport and construct the driver; TransportError if the line cannot open.

    Line-protocol drivers log their raw exchanges on the "hardware_interface.wire" logger
    (DEBUG level; run the daemon with --log-level DEBUG to see the bytes)."""
    driver = DRIVER_FACTORIES[cfg.driver](cfg)
    if isinstance(driver, LineDevice):
        driver.on_exchange = _log_exchange
    return driver

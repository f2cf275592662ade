"""Wire a SimLab world to one emulator per device of the simulated lab configuration."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from hardware_interface.labconfig import LabConfig
from hardware_interface.sim.emulators import registry
from hardware_interface.sim.emulators.arduino import ArduinoEmulator
from hardware_interface.sim.emulators.base import LineEmulator
from hardware_interface.sim.emulators.chemyx import ChemyxEmulator
from hardware_interface.sim.emulators.heater import HeaterBoardEmulator
from hardware_interface.sim.emulators.pump import SyringePumpEmulator
from hardware_interface.sim.emulators.robot import RobotArmEmulator
from hardware_interface.sim.emulators.robotiq import Robotiq2F85Emulator
from hardware_interface.sim.emulators.spectrometers import (
    CdSpectrometerEmulator,
    PlSpectrometerEmulator,
)
from hardware_interface.sim.emulators.watlow import WatlowF4TEmulator

CUVETTE_GRIP_POSITION = 189  # where the 2F-85's fingers meet the simulated cuvette (0..255)

_counter = itertools.count(1)


def new_lab_key() -> str:
    """A key unique in this process, so several simulated labs (tests) can coexist."""
    return f"lab{next(_counter)}"


def build_emulators(world: Any, config: LabConfig) -> dict[str, LineEmulator]:
    """One emulator per device of `config`, all sharing one lock around the world model."""
    lock = threading.RLock()
    emulators: dict[str, LineEmulator] = {}
    for dev in config.devices.values():
        if dev.driver == "msp1_syringe_pump":
            emulators[dev.id] = SyringePumpEmulator(
                world, dev.id, dev.reagent, dev.capacity_mL, lock
            )
        elif dev.driver == "mhb1_heater_board":
            emulators[dev.id] = HeaterBoardEmulator(world, lock)
        elif dev.driver == "mab1_arduino_board":
            by_channel = {ch: vid for vid, ch in dev.valves.items()}
            valves = (by_channel.get(1, "V1"), by_channel.get(2, "V2"))
            emulators[dev.id] = ArduinoEmulator(world, valves, lock)
        elif dev.driver == "mra1_robot_arm":
            emulators[dev.id] = RobotArmEmulator(world, lock)
        elif dev.driver == "mcd1_cd_spectrometer":
            emulators[dev.id] = CdSpectrometerEmulator(world, lock)
        elif dev.driver == "mpl1_pl_spectrometer":
            emulators[dev.id] = PlSpectrometerEmulator(world, lock)
        elif dev.driver == "chemyx_fusion6000":
            emulators[dev.id] = ChemyxEmulator(world, dev.id, dev.reagent, dev.capacity_mL, lock)
        elif dev.driver == "watlow_f4t":
            emulators[dev.id] = WatlowF4TEmulator(world, dev.unit, lock=lock)
        elif dev.driver == "robotiq_2f85":
            emulators[dev.id] = Robotiq2F85Emulator(
                world.clock.now, CUVETTE_GRIP_POSITION, dev.unit, lock=lock
            )
        else:
            raise ValueError(f"{dev.id}: driver {dev.driver!r} has no emulator")
    return emulators


def serve_lab(world: Any, config: LabConfig, lab_key: str) -> dict[str, LineEmulator]:
    """Build the emulators and register them as maosicsim://<lab_key>/<module id>."""
    emulators = build_emulators(world, config)
    registry.register_lab(lab_key, emulators)
    return emulators

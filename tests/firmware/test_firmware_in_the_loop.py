"""Firmware in the loop: each firmware image runs in a simulator (the Uno images in simavr, the
STM32 heater image in QEMU) and the real pyserial driver talks to it over a pseudo-terminal; the
same vector table runs against the Python emulator, so the firmware and the simulated lab must
give the same bytes for the same requests."""

from __future__ import annotations

import re
import time

import pytest

from hardware_interface.devices.arduino_board import ArduinoBoard
from hardware_interface.devices.base import LineDevice
from hardware_interface.devices.heater_board import HeaterBoard
from hardware_interface.devices.protocol import decode_frame
from hardware_interface.devices.syringe_pump import SyringePump
from hardware_interface.transports import SerialTransport
from tests.firmware.conftest import emulator_line, firmware_line
from tests.firmware.vectors import MAB1, MHB1, MSP1, Board, Call, Raw, WaitIdle

DRIVERS = {"msp1_pump": SyringePump, "mab1_board": ArduinoBoard, "mhb1_heater": HeaterBoard}
# Driver methods a vector may call, per driver (an explicit table, not getattr on a string).
METHODS = {
    SyringePump: {
        "resync": SyringePump.resync,
        "status": SyringePump.status,
        "withdraw": SyringePump.withdraw,
        "infuse": SyringePump.infuse,
        "stop": SyringePump.stop,
    },
    ArduinoBoard: {
        "resync": ArduinoBoard.resync,
        "valves": ArduinoBoard.valves,
        "set_valve": ArduinoBoard.set_valve,
        "move_stepper": ArduinoBoard.move_stepper,
        "stepper": ArduinoBoard.stepper,
        "stop": ArduinoBoard.stop,
    },
    HeaterBoard: {
        "resync": HeaterBoard.resync,
        "status": HeaterBoard.status,
        "pid": HeaterBoard.pid,
        "set_pid": HeaterBoard.set_pid,
        "set_ramp": HeaterBoard.set_ramp,
        "set_setpoint": HeaterBoard.set_setpoint,
        "set_peristaltic": HeaterBoard.set_peristaltic,
        "peristaltic": HeaterBoard.peristaltic,
        "stop": HeaterBoard.stop,
    },
}


def call(driver: LineDevice, step: Call) -> object:
    return METHODS[type(driver)][step.method](driver, *step.args)


def same_wire(seen: list[tuple[bytes, bytes]], expected: tuple) -> bool:
    if len(seen) != len(expected):
        return False
    for (request, reply), (want_request, want_reply) in zip(seen, expected, strict=True):
        if request != want_request:
            return False
        if isinstance(want_reply, re.Pattern):
            if want_reply.fullmatch(reply) is None:
                return False
        elif reply != want_reply:
            return False
    return True


def run_vectors(driver: LineDevice, board: Board) -> None:
    for index, step in enumerate(board.steps):
        where = f"{board.name} step {index}: {step}"
        if isinstance(step, Call):
            seen: list[tuple[bytes, bytes]] = []
            driver.on_exchange = lambda _name, request, reply, seen=seen: seen.append(
                (request, reply)
            )
            if step.raises is not None:
                with pytest.raises(step.raises, match=re.escape(step.match)):
                    call(driver, step)
            elif callable(step.result):
                value = call(driver, step)
                assert step.result(value), f"{where}: got {value}"
            else:
                assert call(driver, step) == step.result, where
            assert same_wire(seen, step.wire), f"{where}: the wire carried {seen}"
        elif isinstance(step, Raw):
            driver.transport.write(step.request)
            assert driver.transport.read_line(2.0) == step.reply, where
        elif isinstance(step, WaitIdle):
            deadline = time.monotonic() + step.timeout_s
            while True:
                driver.transport.write(step.request)
                words = decode_frame(driver.transport.read_line(2.0)).words
                if words[0] == "OK" and words[step.busy_word] == "0":
                    break
                assert time.monotonic() < deadline, f"{where}: still busy"
                time.sleep(0.05)
        else:
            raise TypeError(f"unknown vector step {step!r}")


@pytest.mark.parametrize("board", [MSP1, MAB1, MHB1], ids=lambda b: b.name)
@pytest.mark.parametrize("target", ["emulator", "firmware"])
def test_vectors(request, target: str, board: Board) -> None:
    if target == "emulator":
        line = emulator_line(board.name)
    else:
        line = firmware_line(request.getfixturevalue("firmware_build"), board.name, board.baudrate)
    with line as port:
        driver = DRIVERS[board.name](SerialTransport(port, board.baudrate), board.name)
        try:
            run_vectors(driver, board)
        finally:
            driver.close()


@pytest.mark.parametrize(
    ("image", "flash_max", "ram_max"),
    [("mab1_board", 32256, 2048), ("msp1_pump", 32256, 2048), ("mhb1_heater", 65536, 20480)],
)
def test_build_reports_sizes_within_the_chip(firmware_build, image, flash_max, ram_max) -> None:
    assert (firmware_build.out / f"{image}.elf").is_file()
    assert (firmware_build.out / f"{image}.hex").read_text().startswith(":")
    sizes = re.search(
        rf"^{image}\s+flash\s+(\d+) /\s+{flash_max} B .*RAM\s+(\d+) /\s+{ram_max} B",
        firmware_build.log,
        re.M,
    )
    assert sizes, firmware_build.log
    flash, ram = int(sizes[1]), int(sizes[2])
    assert 1000 < flash <= flash_max and 100 < ram <= ram_max

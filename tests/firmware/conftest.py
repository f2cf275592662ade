"""Fixtures of the firmware tests: the images built by scripts/build_firmware.sh, and a serial
line to each board: its Python emulator behind a pty, or its firmware image in a simulator
(simavr for the Uno boards, QEMU's STM32VLDISCOVERY machine for the STM32 heater board)."""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import serial

from hardware_interface.sim.emulators.arduino import ArduinoEmulator
from hardware_interface.sim.emulators.base import LineEmulator
from hardware_interface.sim.emulators.heater import HeaterBoardEmulator
from hardware_interface.sim.emulators.pty_bridge import PtyBridge
from hardware_interface.sim.emulators.pump import SyringePumpEmulator
from hardware_interface.sim.world import SimLab

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build_firmware.sh"
BOOT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Build:
    out: Path  # the folder holding the images
    log: str  # what the build script printed (the size report)


@pytest.fixture(scope="session")
def firmware_build(tmp_path_factory) -> Build:
    """All three images and the simavr runner, built by the project's own build script."""
    out = tmp_path_factory.mktemp("firmware")
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "avr", "arm", "sim"],
        env={**os.environ, "FIRMWARE_BUILD_DIR": str(out)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"build failed:\n{done.stdout}\n{done.stderr}"
    return Build(out, done.stdout)


def _emulator(board: str, world: SimLab) -> LineEmulator:
    if board == "msp1_pump":
        return SyringePumpEmulator(world, "SP1", "Cs-oleate", 0.5)
    if board == "mab1_board":
        return ArduinoEmulator(world, ("V1", "V2"))
    if board == "mhb1_heater":
        return HeaterBoardEmulator(world)
    raise ValueError(f"no emulator for {board}")


@contextmanager
def emulator_line(board: str) -> Iterator[str]:
    """The board's Python emulator over a real-time simulated lab, behind a pseudo-terminal."""
    bridge = PtyBridge(_emulator(board, SimLab(seed=3, speed=1.0)))  # real time, as the firmware
    try:
        yield bridge.port
    finally:
        bridge.close()


def _die_with_parent() -> None:
    # Linux prctl(PR_SET_PDEATHSIG, SIGTERM): a simulator must not outlive a killed test run.
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _wait_until_answering(port: str, baudrate: int) -> None:
    """Poll with `00 ID` (tag 00 is never cached) until the booted firmware answers, then let
    the answers to earlier polls drain, so the vectors start on a quiet board that is up, as a
    host does after opening the port. A request sent while the firmware still boots may be lost
    (its UART is not enabled yet) or answered late: hence the repeat and the drain."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    with serial.Serial(port, baudrate, timeout=0.5) as line:
        while time.monotonic() < deadline:
            line.write(b"00 ID*2D\n")
            if line.read_until(b"\n").endswith(b"\n"):
                while line.read_until(b"\n"):
                    pass  # until half a second of silence
                return
    raise TimeoutError(f"no answer from the firmware on {port} within {BOOT_TIMEOUT_S} s")


@contextmanager
def firmware_line(build: Build, board: str, baudrate: int) -> Iterator[str]:
    """The board's firmware image running in its simulator, its UART on a pseudo-terminal."""
    if board == "mhb1_heater":
        # STM32VLDISCOVERY is QEMU's STM32F1 machine (an STM32F100: same core, USART1 and SPI1
        # addresses; RCC, GPIO and timers are unimplemented and read as 0); serial0 is USART1.
        args = ["qemu-system-arm", "-M", "stm32vldiscovery", "-kernel",
                str(build.out / "mhb1_heater.elf"), "-display", "none", "-monitor", "none",
                "-serial", "pty"]  # fmt: skip
        found = re.compile(r"char device redirected to (\S+)")
    else:
        args = [str(build.out / "simavr_uno")]
        if board == "msp1_pump":
            args.append("--home-switch")  # the syringe's end switch, which the pump homes on
        args.append(str(build.out / f"{board}.elf"))
        found = re.compile(r"^PTY (\S+)")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
    )
    try:
        assert proc.stdout is not None
        seen = []
        match = None
        while match is None and len(seen) < 20:  # warnings may come before the pty's name
            seen.append(proc.stdout.readline().decode())
            if not seen[-1]:
                break  # the simulator exited
            match = found.search(seen[-1])
        if match is None:
            proc.kill()
            raise RuntimeError(f"{args[0]} did not start: {''.join(seen)!r}")
        _wait_until_answering(match[1], baudrate)
        yield match[1]
        assert proc.poll() is None, f"the simulator stopped: {proc.stdout.read()!r}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

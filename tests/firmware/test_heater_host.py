"""The MHB1 heater firmware's control code (PID, ramp, trip, peristaltic stepper) on the host.

QEMU runs the heater image for the protocol (test_firmware_in_the_loop.py), but its STM32
machine has no thermocouple and no timers, so the control loop is checked here instead: the
firmware's own main.c, compiled for the PC by tools/mhb1_host.c with a MAX31855 that reads a
model of the rig's copper block (the simulated lab's constants).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from hardware_interface.devices.protocol import decode_frame, encode_frame

STATE = re.compile(
    r"STATE block=(?P<block>\S+) ramped=(?P<ramped>\S+) pwm=(?P<pwm>\d+) "
    r"step_hz=(?P<step_hz>\S+) dir=(?P<dir>[01]) enable=(?P<enable>[01])"
)


def request(tag: int, *words: str) -> str:
    return encode_frame(tag, list(words)).decode()


def run_host(build, *lines: str) -> list[str]:
    """Feed requests and #directives to the harness; return its output lines."""
    script = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    done = subprocess.run(
        [str(build.out / "mhb1_host")], input=script, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def replies(lines: list[str]) -> dict[int, list[str]]:
    """Reply words by tag."""
    out = {}
    for line in lines:
        if not line.startswith("STATE"):
            frame = decode_frame(line.encode())
            out[frame.tag] = frame.words
    return out


def states(lines: list[str]) -> list[dict[str, float]]:
    return [
        {k: float(v) for k, v in STATE.fullmatch(line).groupdict().items()}
        for line in lines
        if line.startswith("STATE")
    ]


def test_pid_reaches_and_holds_the_setpoint_on_the_ramp(firmware_build):
    lines = run_host(
        firmware_build,
        "#temp 25",
        request(1, "RMP", "20.00"),
        request(2, "TSP", "140.0"),
        "#run 60",
        "#state",
        "#run 840",
        "#state",
        request(3, "TMP"),
    )
    ramp, settled = states(lines)
    assert ramp["ramped"] == pytest.approx(45.0, abs=0.01)  # 25 °C + 20 °C/min x 1 min
    assert settled["ramped"] == 140.0
    words = replies(lines)[3]
    temperature, setpoint, power, stable, trip = words[1:]
    assert abs(float(temperature) - 140.0) <= 1.0 and setpoint == "140.0"
    assert stable == "1" and trip == "0"
    # ~35 % of 100 W holds 140 °C against 0.3 W/K of loss: the PWM duty is that power
    assert 30.0 <= float(power) <= 40.0
    assert settled["pwm"] == pytest.approx(float(power) * 10, abs=1)


def test_the_slowest_ramp_still_moves(firmware_build):
    # 0.1 °C/min is 0.83 m°C per 0.5 s tick, below the resolution of the setpoint itself
    lines = run_host(
        firmware_build,
        request(1, "RMP", "0.10"),
        request(2, "TSP", "30.0"),
        "#run 600",
        "#state",
    )
    (state,) = states(lines)
    assert state["ramped"] == pytest.approx(26.0, abs=0.01)  # 25 °C + 10 min x 0.1 °C/min


def test_over_temperature_trips_and_latches_until_off(firmware_build):
    lines = run_host(
        firmware_build,
        request(1, "TSP", "140.0"),
        "#run 30",
        "#offset 200",  # the thermocouple now reads 200 °C high: above the 220 °C cut-out
        "#run 1",
        request(2, "TMP"),
        request(3, "TSP", "120.0"),
        request(4, "OFF"),
        "#run 1",
        request(5, "TMP"),  # still too hot: it trips again
        "#offset 0",
        request(6, "OFF"),
        "#run 1",
        request(7, "TMP"),
        request(8, "TSP", "120.0"),
        "#state",
    )
    got = replies(lines)
    assert float(got[2][1]) > 220.0 and got[2][2:] == ["OFF", "0.0", "0", "1"]
    assert got[3][:2] == ["ER", "6"] and got[3][2:] == ["tripped"]
    assert got[5][2:] == ["OFF", "0.0", "0", "1"]
    assert got[7][2:] == ["OFF", "0.0", "0", "0"]
    assert got[8] == ["OK"]


def test_open_thermocouple_trips(firmware_build):
    lines = run_host(
        firmware_build,
        request(1, "TSP", "100.0"),
        "#run 5",
        "#open 1",
        "#run 1",
        request(2, "TMP"),
        "#state",
    )
    assert replies(lines)[2][2:] == ["OFF", "0.0", "0", "1"]
    assert states(lines)[0]["pwm"] == 0


@pytest.mark.parametrize(
    ("rpm", "step_hz", "direction"),
    [
        ("12.5", 12.5 * 3200 / 60, 1),
        ("-100.0", 100 * 3200 / 60, 0),
        ("0.001", 0.001 * 3200 / 60, 1),  # a 16-bit period no longer fits: prescaled
    ],
)
def test_peristaltic_step_rate_and_direction(firmware_build, rpm, step_hz, direction):
    lines = run_host(
        firmware_build,
        request(1, "PER", rpm),
        "#state",
        request(2, "PRS"),
        request(3, "PER", "0.0"),
        "#state",
    )
    running, stopped = states(lines)
    assert running["step_hz"] == pytest.approx(step_hz, rel=0.001)
    assert running["dir"] == direction and running["enable"] == 0  # ENABLE is active low
    assert replies(lines)[2] == ["OK", f"{float(rpm):.1f}"]
    assert stopped["step_hz"] == 0 and stopped["enable"] == 1

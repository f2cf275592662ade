"""The firmware's C protocol library, compiled for the host, against the Python framing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hardware_interface.devices.protocol import decode_frame, encode_frame

COMMON = Path(__file__).resolve().parents[2] / "hardware_interface" / "firmware" / "common"


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("fw") / "harness"
    subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{COMMON}", "-o", str(exe),
         str(COMMON / "host_harness.c"), str(COMMON / "maosic_protocol.c")],
        check=True,
    )  # fmt: skip
    return exe


def run(harness: Path, data: bytes) -> list[bytes]:
    out = subprocess.run([str(harness)], input=data, capture_output=True, check=True).stdout
    return out.splitlines(keepends=True)


def test_c_replies_decode_with_the_python_framing(harness):
    lines = run(harness, encode_frame(1, ["ID"]) + encode_frame(2, ["NUM", "12.34", "-0.5"]))
    assert lines[0] == encode_frame(1, ["OK", "TEST", "1.0.0"])
    assert decode_frame(lines[1]).words == ["OK", "12.3", "12.340", "-0.5", "-0.500"]


def test_c_duplicate_suppression_matches_the_emulators(harness):
    run_twice = (
        encode_frame(3, ["RUN"]) * 2 + encode_frame(0, ["RUN"]) * 2 + encode_frame(4, ["RUN"])
    )
    lines = [decode_frame(line).words for line in run(harness, run_twice)]
    assert lines == [["OK", "1"], ["OK", "1"], ["OK", "2"], ["OK", "3"], ["OK", "4"]]


def test_c_errors(harness):
    lines = run(
        harness,
        b"04 ID*00\n"
        + encode_frame(5, ["XYZ"])
        + encode_frame(6, ["NUM", "1e3"])
        + b"x" * 200
        + b"\n"
        + encode_frame(7, ["ID"]),
    )
    assert decode_frame(lines[0]).words[:2] == ["ER", "5"] and decode_frame(lines[0]).tag == 4
    assert decode_frame(lines[1]).words[:2] == ["ER", "1"]
    assert decode_frame(lines[2]).words[:2] == ["ER", "2"]
    assert decode_frame(lines[3]).tag == 7  # the runaway line was dropped without a reply

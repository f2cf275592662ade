"""The interactive shell driven through a pseudo-terminal: completion, help, history, errors."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware_interface.server import DaemonHandle, start_daemon
from tests.user_control.helpers import REPO, clean_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")
PROMPT = "maosic> "
# Run in the child: make the pty its controlling terminal (so Ctrl-C becomes SIGINT), then exec
# the real command. Done in the child rather than with preexec_fn, which is unsafe with threads.
TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """A child process on a pseudo-terminal; ``expect`` waits for text in its output."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        argv = [sys.executable, "-c", TAKE_TERMINAL, *argv]
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=REPO,
            close_fds=True,
            # Own session, whose controlling terminal the pty becomes (see TAKE_TERMINAL).
            start_new_session=True,
        )
        os.close(slave)
        self.seen = ""  # everything read so far, escape sequences removed
        self.pos = 0  # how far ``expect`` has consumed ``seen``

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, needle: str, timeout: float = 30.0) -> str:
        """Wait for ``needle`` after the last match; returns the text before it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.seen.find(needle, self.pos)
            if found >= 0:
                before = self.seen[self.pos : found]
                self.pos = found + len(needle)
                return before
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; output so far:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{needle!r} not seen before EOF:\n{self.seen}")
                self.seen += ANSI.sub("", chunk.decode(errors="replace")).replace("\r", "")

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            os.close(self.master)


@pytest.fixture
def daemon() -> Iterator[DaemonHandle]:
    handle = start_daemon(sim=True, port=0, seed=0, speed=0.0)
    yield handle
    handle.stop()


def start_shell(url: str, home: Path) -> Terminal:
    env = clean_env(home, TERM="dumb", INPUTRC="/dev/null", PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "user_control", "--hardware-url", url, "shell"]
    return Terminal(argv, env)


def test_shell_drives_the_lab_with_completion_help_and_history(daemon, tmp_path):
    term = start_shell(daemon.url, tmp_path)
    try:
        term.expect(PROMPT)
        # Tab completes the command, then the pump's action and the reagent name.
        term.send("hea\t")
        term.expect("heater ")
        term.send("set 130 --ramp 10\r")
        term.expect("setpoint 130.0 °C")
        term.expect(PROMPT)
        term.send("pump SP1 f\t")
        term.expect("fill ")
        term.send("Cs\t")
        term.expect("Cs-oleate ")
        term.send("0.3\r")
        term.expect("0.300 / 0.500 mL Cs-oleate")
        term.expect(PROMPT)
        term.send("help\r")
        listing = term.expect(PROMPT)
        assert "EMERGENCY STOP" in listing and "submit" in listing and "exit" in listing
        term.send("help heater\r")
        assert "usage: maosic heater" in term.expect(PROMPT)
        # A refusal is one line and the shell goes on.
        term.send("heater set 999\r")
        refused = term.expect(PROMPT)
        assert "error: heater.set refused by the hardware daemon (H1, limit exceeded)" in refused
        term.send("pump SP1 infuse --volume nope --rate 1\r")
        assert "'nope' is not a number" in term.expect(PROMPT)
        term.send("bogus\r")
        assert "unknown command 'bogus'" in term.expect(PROMPT)
        term.send("status\r")
        assert "setpoint 130.0 °C" in term.expect(PROMPT)
        term.send("exit\r")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
            term.proc.wait()
    assert daemon.lab.heater_setpoint_C() == pytest.approx(130.0)
    assert daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.3, abs=1e-6)
    history = (tmp_path / ".maosic_history").read_text()
    assert "heater set 130 --ramp 10" in history
    assert "pump SP1 fill Cs-oleate 0.3" in history


def test_shell_reads_history_and_stops_on_ctrl_d(daemon, tmp_path):
    (tmp_path / ".maosic_history").write_text("heater set 120\n")
    term = start_shell(daemon.url, tmp_path)
    try:
        term.expect(PROMPT)
        term.send("\x1b[A")  # up arrow recalls the saved command
        term.expect("heater set 120")
        term.send("\r")
        term.expect("setpoint 120.0 °C")
        term.expect(PROMPT)
        # Ctrl-C at the prompt drops the half-typed line and the shell goes on.
        term.send("pump SP")
        term.expect("pump SP")
        # Wait as a person would. The echo is written while readline is still handling the
        # last key; a SIGINT that lands in that window is taken by readline and re-raised
        # before Python goes back to waiting for input, so nothing happens until the next key
        # (GNU readline's callback mode with CPython's select loop). No typist can hit those
        # microseconds, but a test sending ^C right after the echo did, in 1 run of 5.
        time.sleep(0.5)
        term.send("\x03")
        term.expect(PROMPT)
        term.send("heater status\r")
        assert "setpoint 120.0 °C" in term.expect(PROMPT)
        term.send("\x04")  # Ctrl-D
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
            term.proc.wait()
    assert daemon.lab.heater_setpoint_C() == pytest.approx(120.0)

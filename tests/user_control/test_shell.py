"""The interactive shell driven through a pseudo-terminal: completion, help, history, errors."""

from __future__ import annotations

import os
import platform
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

# Linux system calls that wait on file descriptors (readline waits for a key in one of them),
# by machine: select, poll, pselect6, ppoll.
WAIT_SYSCALLS = {"x86_64": {"23", "7", "270", "271"}, "aarch64": {"72", "73"}}


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

    def waiting_for_a_key(self) -> bool:
        """Whether the child is asleep in the system call that waits for the terminal's input.

        Once it is, a signal interrupts that wait and Python acts on it at once. Before that (the
        child still handling the last key, or off the CPU on a loaded machine), CPython's
        readline loop notes the signal but goes back to waiting without looking at it, until
        the next key: the window a test must not send Ctrl-C into, as no person could.
        """
        proc = f"/proc/{self.proc.pid}"
        try:
            # "running", or the number of the system call the (main) thread is blocked in
            call = Path(proc, "syscall").read_text().split()[0]
        except (OSError, IndexError):
            call = None
        if call is not None and platform.machine() in WAIT_SYSCALLS:
            return call in WAIT_SYSCALLS[platform.machine()]
        # Another machine, or no /proc/PID/syscall: the kernel function it sleeps in.
        wchan = Path(proc, "wchan").read_text()
        return "poll" in wchan or "select" in wchan

    def wait_for_a_key(self, timeout: float = 30.0) -> None:
        """Wait until the child waits for input; see :meth:`waiting_for_a_key`."""
        deadline = time.monotonic() + timeout
        while not self.waiting_for_a_key():
            if time.monotonic() > deadline:
                raise AssertionError(f"the shell never waited for a key:\n{self.seen}")
            time.sleep(0.005)  # polling the condition, not waiting in its place

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
        # The echo is written while readline still handles the last key; a SIGINT sent then
        # waits for the next key (see Terminal.waiting_for_a_key). A person presses Ctrl-C at a
        # shell waiting for a key: so does the test, whatever the machine's load (a fixed pause
        # was too short once under load; none at all lost the ^C in 3 runs of 20).
        term.wait_for_a_key()
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

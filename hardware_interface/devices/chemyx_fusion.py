"""Driver of the Chemyx Fusion 6000 syringe pump over its RS-232 ASCII command set.

Sources (facts only; no vendor code is used):
  [KB-CMD] Chemyx knowledge base, "Serial (RS232) Commands" (chemyx.com/support/knowledge-base/
           programming-and-computer-control/serial-rs232-commands/): the commands `start`,
           `pause`, `stop`, `set diameter X` (mm, up to three decimals, 0.103 to 40.000 mm for the
           Fusion series; "returns the set diameter"), `set units X` (0 mL/min, 1 mL/hr,
           2 uL/min, 3 uL/hr; "returns the integer"), `set volume X,X,...` (up to five decimals;
           the sign chooses infuse or withdraw; the count sets the steps of Multi-Step Mode).
           Printed examples: `set diameter 11.73`, `set units 2`.
  [KB-SER] Chemyx knowledge base, "Serial Commands" (the `help` listing): `set rate [x.x]`,
           `set volume [x.x]  -Pump Set Volume (+infuse,-withdraws)`, `set delay`,
           `read limit parameter`, `dispensed volume`, `elapsed time`; the replies
           "Pump start running…", "Pump delay…", "Pump pause!", "Pump stop!".
  [KB-RS232] Chemyx knowledge base, "RS232 Communication": 9600 or 38400 baud (set in the
           pump's menu), parity none, 1 stop bit, no flow control; commands are lower case;
           "\\r" or "\\r\\n" may end a command, "\\n" alone is not valid; most commands return
           the set value, and a returned value that differs from the one sent means the value was
           outside the pump's limits; multi-step values are comma separated, and `rate`/`delay`
           lists shorter than the step count repeat their last value.
  [EX-PY]  Public Python example for Chemyx pumps (github cukelarter/Chemyx-Syringe-Pump,
           python_dist/core/connect.py; not confirmed to be Chemyx's own): ends each command with
           "\\r" and sends `pump status` to read the run state.

NOT confirmed from a public document (this driver's assumptions, kept tolerant):
  - the exact text of the echoed value lines: the driver takes the numbers in the first
    non-empty reply line that is not an echo of the command, whatever words surround them;
  - the `pump status` reply: one integer, 0 stopped, 1 running, 2 paused, 3 delayed, 4 stalled
    (as this author remembers the Chemyx page; the stored copy read here stops before it);
  - the `dispensed volume` reply: one number in the volume unit of `set units`;
  - replies end with "\\r\\n"; data bits 8.
A Chemyx pump does not know what its syringe holds: the driver counts the syringe's contents
from `initial_volume_mL` (0: the syringe is empty when the daemon starts, the lab's procedure)
with the pump's own `dispensed volume` of each run.

Command table (request bytes, "\\r"-terminated -> reply line):
    set units 0            -> 0                         mL/min for rate, mL for volume
    set diameter <mm>      -> <mm>                      syringe inner diameter
    set volume <+-mL>[,..] -> <mL>[,..]                 + infuse, - withdraw; n values = n steps
    set rate <mL/min>[,..] -> <mL/min>[,..]
    start                  -> Pump start running...      (or Pump delay...)
    pause                  -> Pump pause!
    stop                   -> Pump stop!
    pump status            -> <0..4>
    dispensed volume       -> <mL>
"""

from __future__ import annotations

import re
import threading

from hardware_interface.devices.base import (
    ConnectionLost,
    DeviceBusy,
    DeviceFault,
    DeviceRefused,
    DeviceTimeout,
    GarbledReply,
    RangeError,
    check_range,
)
from hardware_interface.devices.capabilities import PumpState
from hardware_interface.transports import Transport, TransportError

MODEL = "Chemyx Fusion 6000"
TERMINATOR = b"\r"  # [KB-RS232]: "\r" or "\r\n"; [EX-PY] sends "\r"
BAUDRATES = (9600, 38400)  # [KB-RS232]
DIAMETER_MIN_MM = 0.103  # [KB-CMD], Fusion series
DIAMETER_MAX_MM = 40.0
UNITS_ML_MIN = 0  # [KB-CMD]: 0 mL/min, 1 mL/hr, 2 uL/min, 3 uL/hr
UNIT_CODES = {"mL/min": 0, "mL/hr": 1, "uL/min": 2, "uL/hr": 3}
VOLUME_DECIMALS = 5  # [KB-CMD]
DIAMETER_DECIMALS = 3  # [KB-CMD]
RATE_DECIMALS = 5  # not documented; rates are sent like volumes
MIN_VOLUME_ML = 0.00001  # one unit of the fifth decimal
MIN_RATE_ML_MIN = 0.00001
MAX_STEPS = 10  # the driver's own cap on a multi-step program (the pump's is not documented)
STATUS_STOPPED, STATUS_RUNNING, STATUS_PAUSED, STATUS_DELAYED, STATUS_STALLED = range(5)
STATUS_NAMES = {0: "stopped", 1: "running", 2: "paused", 3: "delayed", 4: "stalled"}
REPLY_START = ("Pump start running", "Pump delay")  # [KB-SER]
REPLY_PAUSE = "Pump pause"
REPLY_STOP = "Pump stop"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def fmt_value(value: float, decimals: int) -> str:
    """A value as the pump takes it: fixed decimals, trailing zeros and point dropped."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class ChemyxFusion6000:
    """One Chemyx Fusion 6000 (single channel) on an RS-232 line; volumes in mL, rates in mL/min.

    capacity_mL: the syringe's volume; diameter_mm: its inner diameter (sent before every run,
    since the touchscreen may have changed it); max_rate_mL_min: this syringe's rate ceiling.
    """

    def __init__(
        self,
        transport: Transport,
        name: str,
        capacity_mL: float,
        diameter_mm: float,
        max_rate_mL_min: float,
        initial_volume_mL: float = 0.0,
        timeout_s: float = 1.0,
    ) -> None:
        check_range(name, "diameter_mm", diameter_mm, DIAMETER_MIN_MM, DIAMETER_MAX_MM, "mm")
        check_range(name, "initial_volume_mL", initial_volume_mL, 0.0, capacity_mL, "mL")
        self.transport = transport
        self.name = name
        self.capacity_mL = capacity_mL
        self.diameter_mm = diameter_mm
        self.max_rate_mL_min = max_rate_mL_min
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        # contents bookkeeping: the volume held when the last run started and its direction
        self._held_at_start_mL = float(initial_volume_mL)
        self._run_sign = 0.0  # +1 withdraw (fills), -1 infuse (empties), 0 no run yet

    # -- wire -----------------------------------------------------------------------------
    def _exchange(self, command: str) -> str:
        """Send one command; return the first non-empty reply line that is not its echo."""
        with self._lock:
            try:
                self.transport.reset_input()
                self.transport.write(command.encode("ascii") + TERMINATOR)
                while True:
                    raw = self.transport.read_line(self.timeout_s)
                    if not raw.endswith(b"\n"):
                        raise DeviceTimeout(self.name, f"no reply to {command!r}")
                    line = raw.decode("ascii", "replace").strip()
                    if line and line != command:  # skip blank lines and an echo ("echo on")
                        return line
            except TransportError as exc:
                raise ConnectionLost(self.name, str(exc)) from exc

    def _numbers(self, line: str, command: str) -> list[float]:
        found = [float(n) for n in _NUMBER.findall(line)]
        if not found:
            raise GarbledReply(self.name, f"reply {line!r} to {command!r} has no value")
        return found

    def _set(self, what: str, values: list[str]) -> list[float]:
        """`set <what> v1,v2,...`; the pump echoes what it took ([KB-RS232]), and a value that
        differs from the one sent was outside its limits."""
        command = f"set {what} {','.join(values)}"
        got = self._numbers(self._exchange(command), command)
        wanted = [float(v) for v in values]
        if len(got) < len(wanted) or any(
            abs(g - w) > 1e-9 + 1e-6 * abs(w) for g, w in zip(got, wanted, strict=False)
        ):
            raise DeviceRefused(
                self.name, 3, f"pump took {what} {got} instead of {wanted}: outside its limits"
            )
        return got

    # -- commands -------------------------------------------------------------------------
    def set_units(self, unit: str) -> None:
        """Rate unit (and volume unit): "mL/min", "mL/hr", "uL/min" or "uL/hr"."""
        if unit not in UNIT_CODES:
            raise RangeError(self.name, f"unit {unit!r} not one of {sorted(UNIT_CODES)}")
        self._set("units", [str(UNIT_CODES[unit])])

    def set_diameter(self, diameter_mm: float) -> None:
        check_range(self.name, "diameter_mm", diameter_mm, DIAMETER_MIN_MM, DIAMETER_MAX_MM, "mm")
        self._set("diameter", [fmt_value(diameter_mm, DIAMETER_DECIMALS)])

    def start(self) -> None:
        reply = self._exchange("start")
        if not reply.startswith(REPLY_START):
            raise DeviceRefused(self.name, 4, f"start answered {reply!r}")

    def pause(self) -> None:
        reply = self._exchange("pause")
        if not reply.startswith(REPLY_PAUSE):
            raise DeviceRefused(self.name, 4, f"pause answered {reply!r}")

    def stop(self) -> None:
        """End the run now (it cannot be resumed, [KB-CMD]); the syringe keeps its place."""
        with self._lock:
            reply = self._exchange("stop")
            if not reply.startswith(REPLY_STOP):
                raise GarbledReply(self.name, f"stop answered {reply!r}")

    def run_status(self) -> int:
        """0 stopped, 1 running, 2 paused, 3 delayed, 4 stalled (see the module docstring)."""
        line = self._exchange("pump status")
        code = int(self._numbers(line, "pump status")[0])
        if code not in STATUS_NAMES:
            raise GarbledReply(self.name, f"pump status {code} is not 0..4")
        return code

    def dispensed_mL(self) -> float:
        """Volume moved by the current (or last) run, mL."""
        return abs(self._numbers(self._exchange("dispensed volume"), "dispensed volume")[0])

    def run_steps(self, steps: list[tuple[float, float]]) -> float:
        """Multi-step run: [(signed volume mL, + infuse / - withdraw; rate mL/min), ...].

        Returns the expected duration (s). The contents bookkeeping needs one direction per
        program, so steps that mix infuse and withdraw are refused."""
        if not 1 <= len(steps) <= MAX_STEPS:
            raise RangeError(self.name, f"{len(steps)} steps, need 1..{MAX_STEPS}")
        signs = set()
        for i, (volume, rate) in enumerate(steps):
            check_range(self.name, f"steps[{i}].volume_mL", abs(volume), MIN_VOLUME_ML,
                        self.capacity_mL, "mL")  # fmt: skip
            check_range(self.name, f"steps[{i}].rate_mL_min", rate, MIN_RATE_ML_MIN,
                        self.max_rate_mL_min, "mL/min")  # fmt: skip
            signs.add(volume > 0)
        if len(signs) > 1:
            raise RangeError(self.name, "a program must either infuse or withdraw throughout")
        with self._lock:
            held = self._held_now_mL()
            total = sum(abs(v) for v, _ in steps)
            sign = -1.0 if steps[0][0] > 0 else 1.0
            if sign > 0 and held + total > self.capacity_mL + 1e-6:
                raise RangeError(self.name, f"over-fill: {held:.4f} + {total:.4f} mL")
            if self.run_status() in (STATUS_RUNNING, STATUS_DELAYED):
                raise DeviceBusy(self.name, "a run is in progress")
            self._set("units", [str(UNITS_ML_MIN)])
            self._set("diameter", [fmt_value(self.diameter_mm, DIAMETER_DECIMALS)])
            self._set("volume", [fmt_value(v, VOLUME_DECIMALS) for v, _ in steps])
            self._set("rate", [fmt_value(r, RATE_DECIMALS) for _, r in steps])
            self.start()
            self._held_at_start_mL, self._run_sign = held, sign
            return sum(abs(v) / r * 60.0 for v, r in steps)

    def _held_now_mL(self) -> float:
        if self._run_sign == 0.0:
            return self._held_at_start_mL
        held = self._held_at_start_mL + self._run_sign * self.dispensed_mL()
        return min(max(held, 0.0), self.capacity_mL)

    # -- the Pump capability ----------------------------------------------------------------
    def infuse(self, volume_mL: float, rate_mL_min: float) -> float:
        """Push `volume_mL` (mL) at `rate_mL_min` (mL/min); returns the duration (s)."""
        check_range(self.name, "volume_mL", volume_mL, MIN_VOLUME_ML, self.capacity_mL, "mL")
        return self.run_steps([(float(volume_mL), rate_mL_min)])

    def withdraw(self, volume_mL: float, rate_mL_min: float) -> float:
        """Draw `volume_mL` (mL) at `rate_mL_min` (mL/min); returns the duration (s)."""
        check_range(self.name, "volume_mL", volume_mL, MIN_VOLUME_ML, self.capacity_mL, "mL")
        return self.run_steps([(-float(volume_mL), rate_mL_min)])

    def status(self) -> PumpState:
        with self._lock:
            code = self.run_status()
            if code == STATUS_STALLED:
                raise DeviceFault(self.name, "pump stalled (status 4)")
            busy = code in (STATUS_RUNNING, STATUS_PAUSED, STATUS_DELAYED)
            return PumpState(busy=busy, volume_mL=self._held_now_mL())

    def identify(self) -> list[str]:
        """The pump has no identity query; `pump status` proves it answers."""
        return [MODEL, STATUS_NAMES[self.run_status()]]

    def close(self) -> None:
        self.transport.close()

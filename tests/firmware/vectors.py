"""One table of protocol vectors per board, run against both the Python emulator and the firmware.

Each table is a script for the real driver over a real serial line: driver calls with the result
and the exact bytes that must cross the wire, raw lines a driver would never send (malformed,
bad checksum, a retry), and waits for a motion to end. The same table runs against the emulator
(hardware_interface/sim/emulators/) and the firmware image (in simavr), so the two cannot drift
apart without a test failing. Byte strings are written out in full on purpose: they are the
protocol (firmware/docs/firmware_protocol.md), not something computed by the code under test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware_interface.devices.base import DeviceBusy, RangeError
from hardware_interface.devices.capabilities import HeaterState, PumpState


@dataclass(frozen=True)
class Call:
    """Call `method(*args)` on the driver; expect `result` (or `raises` with `match` in its
    message) and exactly the request/reply lines `wire` on the line. Where a value comes from
    physics that the two targets do not share (the heater's thermocouple reading), `result` is
    a predicate and the reply a pattern that leaves just that value open."""

    method: str
    args: tuple = ()
    result: object = None
    wire: tuple[tuple[bytes, bytes | re.Pattern[bytes]], ...] = ()
    raises: type[Exception] | None = None
    match: str = ""


@dataclass(frozen=True)
class Raw:
    """Write `request` as it is and expect `reply` as the next line."""

    request: bytes
    reply: bytes


@dataclass(frozen=True)
class WaitIdle:
    """Poll with `request` (tag 00, so the driver's tags and the board's reply cache are left
    alone) until word `busy_word` of the reply is "0"; a motion ends in its own time on the
    firmware (simulated in real time) and on the emulator (a real-time simulated lab)."""

    request: bytes
    busy_word: int
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Board:
    name: str
    baudrate: int
    steps: tuple = field(default_factory=tuple)


# --- MSP1 syringe pump: fill, busy, status, over-fill, empty, infuse, a retry, bad lines --------
MSP1 = Board(
    "msp1_pump",
    115200,
    (
        Call("resync", (), ["MSP1", "500.0", "1.0.0"],
             ((b"00 ID*2D\n", b"00 OK MSP1 500.0 1.0.0*61\n"),)),
        Call("status", (), PumpState(busy=False, volume_mL=0.0),
             ((b"01 STA*67\n", b"01 OK 0 0.0*3B\n"),)),
        # half a second of motion: long enough that the next request finds the pump busy even
        # when a loaded machine stalls the test for a while
        Call("withdraw", (0.005, 0.6), 0.5,
             ((b"02 WDR 5.0 600.0*60\n", b"02 OK 0.500*2D\n"),)),
        Call("withdraw", (0.005, 0.6), None,
             ((b"03 WDR 5.0 600.0*61\n", b"03 ER 4 busy*1D\n"),), DeviceBusy, "WDR: busy"),
        WaitIdle(b"00 STA*66\n", 1),
        Call("status", (), PumpState(busy=False, volume_mL=0.005),
             ((b"04 STA*62\n", b"04 OK 0 5.0*3B\n"),)),
        Call("withdraw", (0.5, 2.0), None,
             ((b"05 WDR 500.0 2000.0*53\n", b"05 ER 3 over-fill 5.0+500.0 uL*3F\n"),),
             RangeError, "over-fill 5.0+500.0 uL"),
        Call("infuse", (0.01, 2.0), None,
             ((b"06 INF 10.0 2000.0*64\n", b"06 ER 3 empty: holds 5.0 uL*03\n"),),
             RangeError, "empty: holds 5.0 uL"),
        Call("infuse", (0.005, 0.6), 0.5,
             ((b"07 INF 5.0 600.0*65\n", b"07 OK 0.500*28\n"),)),
        # The host lost that reply and resends the same line: the cached answer, not a second
        # infusion (which would answer ER 4 busy, or ER 3 empty once the first one is done).
        Raw(b"07 INF 5.0 600.0*65\n", b"07 OK 0.500*28\n"),
        WaitIdle(b"00 STA*66\n", 1),
        Call("status", (), PumpState(busy=False, volume_mL=0.0),
             ((b"08 STA*6E\n", b"08 OK 0 0.0*32\n"),)),
        Raw(b"50 STA\n", b"50 ER 5 checksum*0A\n"),  # malformed: no checksum at all
        Raw(b"51 STA*00\n", b"51 ER 5 checksum*0B\n"),  # checksum error
        Raw(b"52 INF abc 100.0*29\n", b"52 ER 2 volume_uL abc not a number*1B\n"),
        Raw(b"53 XYZ*7D\n", b"53 ER 1 unknown command XYZ*54\n"),
        Raw(b"54 WDR 10.0 6000.0*67\n", b"54 ER 3 rate 6000.0 uL/min out of range*5B\n"),
        Raw(b"55 WDR 10.0*5E\n", b"55 ER 2 missing rate_uL_min*10\n"),
        Raw(b"ID*0D\n", b"00 ER 5 checksum*0F\n"),  # good checksum, no tag: not a frame
        # numbers in the protocol's own syntax only: no exponent, no digit separators
        Raw(b"56 INF 1e3 100.0*2A\n", b"56 ER 2 volume_uL 1e3 not a number*18\n"),
        Raw(b"58 INF 1_000 100.0*1D\n", b"58 ER 2 volume_uL 1_000 not a number*2F\n"),
        Raw(b"57 *22\n", b"57 ER 5 checksum*0D\n"),  # a tag and a checksum, no command
        Call("stop", (), None, ((b"09 STP*7E\n", b"09 OK*2D\n"),)),
    ),
)  # fmt: skip

# --- MAB1 valve/stepper board: valves, a move, busy, position, halt, bad lines -----------------
MAB1 = Board(
    "mab1_board",
    57600,
    (
        Call("resync", (), ["MAB1", "1.0.0"], ((b"00 ID*2D\n", b"00 OK MAB1 1.0.0*6A\n"),)),
        Call("valves", (), [False, False], ((b"01 VLS*68\n", b"01 OK 0 0*25\n"),)),
        Call("set_valve", (2, True), None, ((b"02 VLV 2 1*6D\n", b"02 OK*26\n"),)),
        Call("valves", (), [False, True], ((b"03 VLS*6A\n", b"03 OK 0 1*26\n"),)),
        Call("move_stepper", (-400, 800), 0.5,
             ((b"04 MOV -400 800*51\n", b"04 OK 0.500*2B\n"),)),
        Call("move_stepper", (10, 800), None,
             ((b"05 MOV 10 800*48\n", b"05 ER 4 busy*1B\n"),), DeviceBusy, "MOV: busy"),
        WaitIdle(b"00 STS*74\n", 2),
        Call("stepper", (), (-400, False), ((b"06 STS*72\n", b"06 OK -400 0*0B\n"),)),
        # 2 steps at 7 steps/s: 0.285714... s, rounded (not cut) to the millisecond
        Call("move_stepper", (2, 7), 0.286, ((b"07 MOV 2 7*76\n", b"07 OK 0.286*21\n"),)),
        WaitIdle(b"00 STS*74\n", 2),
        Call("stepper", (), (-398, False), ((b"08 STS*7C\n", b"08 OK -398 0*03\n"),)),
        Call("stop", (), None, ((b"09 HLT*79\n", b"09 OK*2D\n"),)),
        Call("valves", (), [False, False], ((b"10 VLS*68\n", b"10 OK 0 0*25\n"),)),
        Raw(b"60 VLV 3 1*68\n", b"60 ER 2 usage VLV <1|2> <0|1>*08\n"),
        Raw(b"61 MOV 10.5 100*58\n", b"61 ER 3 steps or speed out of range*20\n"),
        Raw(b"62 MOV abc 100*21\n", b"62 ER 2 steps abc not a number*17\n"),
        Raw(b"63 STS\n", b"63 ER 5 checksum*0A\n"),  # malformed: no checksum at all
        Raw(b"64 STS*00\n", b"64 ER 5 checksum*0D\n"),  # checksum error
        Raw(b"65 FOO*65\n", b"65 ER 1 unknown command FOO*4C\n"),
        Raw(b"ID*0D\n", b"00 ER 5 checksum*0F\n"),  # good checksum, no tag: not a frame
    ),
)  # fmt: skip


def _heater_state(setpoint_C: float | None, power_pct: float | None) -> Callable[[object], bool]:
    """Predicate on a HeaterState: any temperature, the given setpoint and power (None: any
    power), neither stable nor tripped."""

    def check(state: object) -> bool:
        return (
            isinstance(state, HeaterState)
            and state.setpoint_C == setpoint_C
            and (power_pct is None or state.power_pct == power_pct)
            and not state.stable
            and not state.tripped
        )

    return check


# A TMP reply whose temperature (and, while heating, power) is left open: the emulator's block
# sits at room temperature, the firmware in QEMU reads a thermocouple that is not there (0.0).
def _tmp(tag: bytes, rest: bytes) -> re.Pattern[bytes]:
    return re.compile(tag + rb" OK -?\d+\.\d " + rest + rb"\*[0-9A-F]{2}\n")


# --- MHB1 heater board: gains, status, ramp, setpoint, peristaltic pump, stop, bad lines ------
MHB1 = Board(
    "mhb1_heater",
    115200,
    (
        Call("resync", (), ["MHB1", "1.0.0"], ((b"00 ID*2D\n", b"00 OK MHB1 1.0.0*63\n"),)),
        Call("pid", (), (12.0, 0.06, 20.0),
             ((b"01 GPD*72\n", b"01 OK 12.0000 0.0600 20.0000*1C\n"),)),
        Call("set_pid", (8.0, 0.2, 1.5), None,
             ((b"02 PID 8.0000 0.2000 1.5000*4F\n", b"02 OK*26\n"),)),
        Call("pid", (), (8.0, 0.2, 1.5),
             ((b"03 GPD*70\n", b"03 OK 8.0000 0.2000 1.5000*17\n"),)),
        Call("status", (), _heater_state(None, 0.0),
             ((b"04 TMP*6D\n", _tmp(b"04", rb"OFF 0.0 0 0")),)),
        Call("set_ramp", (20.0,), None, ((b"05 RMP 20.00*66\n", b"05 OK*21\n"),)),
        Call("set_setpoint", (140.0,), None, ((b"06 TSP 140.0*7A\n", b"06 OK*22\n"),)),
        Call("status", (), _heater_state(140.0, None),
             ((b"07 TMP*6E\n", _tmp(b"07", rb"140\.0 \d+\.\d 0 0")),)),
        Call("set_peristaltic", (-12.5,), None, ((b"08 PER -12.5*7A\n", b"08 OK*2C\n"),)),
        Call("peristaltic", (), -12.5, ((b"09 PRS*78\n", b"09 OK -12.5*38\n"),)),
        Call("stop", (), None,
             ((b"10 OFF*6E\n", b"10 OK*25\n"), (b"11 PER 0.0*69\n", b"11 OK*24\n"))),
        Call("status", (), _heater_state(None, 0.0),
             ((b"12 TMP*6A\n", _tmp(b"12", rb"OFF 0.0 0 0")),)),
        Raw(b"70 TSP 300.0*7D\n", b"70 ER 3 setpoint 300.0 out of range*38\n"),
        Raw(b"71 RMP 0*79\n", b"71 ER 3 ramp 0.0 out of range*3A\n"),
        Raw(b"72 PER 150*76\n", b"72 ER 3 rpm 150.0 out of range*5C\n"),
        Raw(b"73 PID 1 2 -3*44\n", b"73 ER 3 negative gain*22\n"),
        Raw(b"74 PID 2000 0 0*5C\n", b"74 ER 3 kp must be in [0, 1000], got 2000.0*74\n"),
        Raw(b"75 PID 1 2*7C\n", b"75 ER 2 missing kd*4C\n"),
        Raw(b"76 TSP abc*36\n", b"76 ER 2 setpoint_C abc not a number*61\n"),
        Raw(b"77 ABC*60\n", b"77 ER 1 unknown command ABC*49\n"),
        Raw(b"78 TMP\n", b"78 ER 5 checksum*00\n"),  # malformed: no checksum at all
        Raw(b"79 TMP*00\n", b"79 ER 5 checksum*01\n"),  # checksum error
        Raw(b"ID*0D\n", b"00 ER 5 checksum*0F\n"),  # good checksum, no tag: not a frame
    ),
)  # fmt: skip

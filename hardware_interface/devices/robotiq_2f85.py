"""Driver of the Robotiq 2F-85 adaptive gripper over Modbus RTU (RS-485), through pymodbus.

Sources (facts only; no vendor code is used):
  [2F-IM]  Robotiq "2F-85 & 2F-140 Instruction Manual", section 4 (Control), Modbus RTU
           example: p. 56 (activation; status read "09 04 07 D0 00 01 30 0F" answered
           "09 04 02 11 00 54 A1" while activating, "09 04 02 31 00 4D 61" when done), p. 61
           (status read of 3 registers "09 04 07 D0 00 03 B1 CE", answer while moving
           "09 04 06 39 00 00 00 BB 10 71 06"), p. 77 (grasp completed
           "09 04 06 B9 00 00 FF BD 00 5C 9A": gOBJ 2, position 0xBD), p. 78 (open at full speed
           and force "09 10 03 E8 00 03 06 09 00 00 00 FF FF 72 19", answer
           "09 10 03 E8 00 03 01 30"), p. 80 (opening completed "09 04 06 F9 00 00 00 0D 00 17 AA":
           gOBJ 3, position 13/255 at the fingers' software limit). Page numbers are those
           printed on the manual's pages (the web copies number them one or two higher).
  [HE-IM]  Robotiq "Hand-E Instruction Manual", p. 50 (activation request, set rACT:
           "09 10 03 E8 00 03 06 01 00 00 00 00 00 72 E1"), p. 51 (the same status read with
           function 03: "09 03 07 D0 00 01 85 CF").
  [BLOG]   Robotiq blog "Controlling the Robotiq 2F gripper with Modbus commands in Python"
           (its requests are quoted in public copies, e.g. github jhu-lcsr/good_robot
           tmp/test_robotiq.py): clear rACT "09 10 03 E8 00 03 06 00 00 00 00 00 00 73 30", close
           at full speed and force "09 10 03 E8 00 03 06 09 00 00 FF FF FF 42 29"; 115200 baud,
           8 data bits, no parity, 1 stop bit.
Register layout ([2F-IM] examples): output registers from 0x03E8 (1000): ACTION REQUEST
(high byte of 0x03E8: rACT bit 0, rGTO bit 3), POSITION REQUEST (low byte of 0x03E9), SPEED
and FORCE (high and low byte of 0x03EA). Input registers from 0x07D0 (2000): GRIPPER STATUS
(high byte of 0x07D0: gACT bit 0, gGTO bit 3, gSTA bits 4-5, gOBJ bits 6-7), FAULT STATUS and
POSITION REQUEST ECHO (0x07D1), POSITION and FINGER CURRENT (0x07D2). Slave id 9.

NOT confirmed from a public document read here: the meaning of each gFLT fault code (the
driver reports the number; any non-zero value is a fault), and that clearing rGTO halts a motion
(the manual names rGTO "go to requested position"; `stop` relies on it).

Command table (function, registers -> meaning):
    16  0x03E8 [0x0000, 0, 0]                 clear rACT (reset)
    16  0x03E8 [0x0100, 0, 0]                 set rACT (activate)
    16  0x03E8 [0x0900, rPR, rSP<<8 | rFR]    go to position rPR (0 open .. 255 closed)
    16  0x03E8 [0x0100, 0, 0]                 rGTO cleared: stop
    04  0x07D0 x3                             status, fault, position
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware_interface.devices.base import DeviceFault, RangeError
from hardware_interface.devices.modbus_link import ModbusUnit

MODEL = "Robotiq 2F-85"
DEFAULT_UNIT = 9  # [2F-IM] examples
BAUDRATE = 115200  # [BLOG]
REG_OUTPUT = 0x03E8
REG_INPUT = 0x07D0
RACT, RGTO = 0x01, 0x08
GSTA_ACTIVATED = 3
GOBJ_MOVING, GOBJ_CONTACT_OPENING, GOBJ_CONTACT_CLOSING, GOBJ_AT_REQUEST = 0, 1, 2, 3
OPEN, CLOSED = 0, 255


@dataclass(frozen=True)
class GripperStatus:
    activated: bool  # gACT
    going: bool  # gGTO
    activation: int  # gSTA: 0 reset, 1 in progress, 3 complete
    object: int  # gOBJ: 0 moving, 1 contact opening, 2 contact closing, 3 at request
    fault: int  # gFLT (0: none)
    request_echo: int  # position request echo, 0..255
    position: int  # 0 open .. 255 closed
    current: int  # finger current, in units of 10 mA

    @property
    def busy(self) -> bool:
        return self.activation == 1 or (self.going and self.object == GOBJ_MOVING)


def _byte(name: str, label: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise RangeError(name, f"{label} must be an integer 0..255, got {value!r}")
    return value


class Robotiq2F85:
    """The gripper on its own RS-485 line (or the arm's tool port, through the same frames)."""

    def __init__(self, client: Any, name: str = "gripper", unit: int = DEFAULT_UNIT,
                 speed: int = 255, force: int = 128) -> None:  # fmt: skip
        self.name = name
        self.link = ModbusUnit(client, name, unit)
        self.speed = _byte(name, "speed", speed)
        self.force = _byte(name, "force", force)

    def reset(self) -> None:
        """Clear rACT: the gripper forgets its activation."""
        self.link.write(REG_OUTPUT, [0x0000, 0x0000, 0x0000])

    def activate(self) -> None:
        """Set rACT; the gripper then opens and closes once to calibrate (gSTA 1, then 3)."""
        self.link.write(REG_OUTPUT, [RACT << 8, 0x0000, 0x0000])

    def go_to(self, position: int, speed: int | None = None, force: int | None = None) -> None:
        """Move the fingers to `position` (0 open .. 255 closed) at `speed` and `force` (0..255)."""
        rpr = _byte(self.name, "position", position)
        rsp = _byte(self.name, "speed", self.speed if speed is None else speed)
        rfr = _byte(self.name, "force", self.force if force is None else force)
        self.link.write(REG_OUTPUT, [(RACT | RGTO) << 8, rpr, rsp << 8 | rfr])

    def grip(self, closed: bool) -> None:
        """Close on (or open from) the cuvette."""
        self.go_to(CLOSED if closed else OPEN)

    def stop(self) -> None:
        """Clear rGTO, keeping the activation: the fingers stop where they are.

        On a gripper that is not activated nothing is written: writing rACT=1 there would start
        an activation, which strokes the fingers open and shut (the emergency stop and the
        daemon's shutdown call this on every device)."""
        if not self.status().activated:
            return
        self.link.write(REG_OUTPUT, [RACT << 8, 0x0000, 0x0000])

    def status(self) -> GripperStatus:
        words = self.link.read_input(REG_INPUT, 3)
        status, fault, position = words[0] >> 8, words[1] >> 8, words[2] >> 8
        return GripperStatus(
            activated=bool(status & 0x01),
            going=bool(status & 0x08),
            activation=(status >> 4) & 0x03,
            object=(status >> 6) & 0x03,
            fault=fault,
            request_echo=words[1] & 0xFF,
            position=position,
            current=words[2] & 0xFF,
        )

    def gripper_closed(self) -> bool:
        """True when the fingers stopped on an object while closing, or are shut."""
        state = self.status()
        if state.fault:
            raise DeviceFault(self.name, f"gripper fault gFLT 0x{state.fault:02X}")
        return state.object == GOBJ_CONTACT_CLOSING or (
            state.object == GOBJ_AT_REQUEST and state.request_echo > 127
        )

    def identify(self) -> list[str]:
        state = self.status()
        return [MODEL, "activated" if state.activation == GSTA_ACTIVATED else "not activated"]

    def close(self) -> None:
        self.link.close()

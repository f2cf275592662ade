"""Driver of the collaborative robot arm's controller script (model MRA-1), over serial or TCP.

The arm vendor's own interface is not public; our controller script on the arm's teach pendant
PC exposes taught, named poses through the same line protocol as the boards.
"""

from __future__ import annotations

from hardware_interface.devices.base import GarbledReply, LineDevice, RangeError
from hardware_interface.transports import Transport

MODEL = "MRA1"
POSITIONS = ("home", "sampler", "abs", "cd", "waste")


class RobotArm(LineDevice):
    """Robot arm moving a cuvette between taught named positions.

    Command table (request words -> reply words after OK):
        ID            -> MRA1 <firmware>
        MOV <name>    -> <duration_s>       start a move to a taught position
        POS           -> <name> <busy 0|1>  position reached (or target while moving)
        GRP <0|1>     -> (none)             gripper open (0) / closed (1)
        GRS           -> <0|1>
        HLT           -> (none)             protective stop
    Errors: ER 2 unknown position, ER 4 busy (already moving), ER 6 protective stop latched.
    """

    def __init__(
        self,
        transport: Transport,
        name: str = "robot",
        positions: tuple[str, ...] = POSITIONS,
        timeout_s: float = 1.0,
        retries: int = 2,
    ) -> None:
        super().__init__(transport, name, timeout_s, retries)
        self.positions = positions

    def move(self, position: str) -> float:
        if position not in self.positions:
            raise RangeError(self.name, f"position {position!r} not one of {list(self.positions)}")
        return self._floats(self._query("MOV", position), 1, "MOV")[0]

    def position(self) -> tuple[str, bool]:
        words = self._query("POS")
        if len(words) < 2 or words[1] not in ("0", "1"):
            raise GarbledReply(self.name, f"POS reply {words} is not '<name> <0|1>'")
        return words[0], words[1] == "1"

    def grip(self, closed: bool) -> None:
        self._query("GRP", "1" if closed else "0")

    def gripper_closed(self) -> bool:
        words = self._query("GRS")
        if not words or words[0] not in ("0", "1"):
            raise GarbledReply(self.name, f"GRS reply {words} is not a flag")
        return words[0] == "1"

    def stop(self) -> None:
        self._query("HLT")

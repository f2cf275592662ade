"""valve.*: the gas valves on the Arduino board."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.errors import UNKNOWN_MODULE, AppError

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon


class ValveMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def valve_set(self, valve: str, open: bool) -> dict[str, Any]:  # noqa: A002 - contract name
        """Open or close a gas valve."""
        if valve not in self.lab.valves:
            raise AppError(UNKNOWN_MODULE, safety.module_name(valve),
                           f"unknown valve {safety.shown(valve)}; valves: "
                           f"{sorted(self.lab.valves)}")  # fmt: skip
        board, channel = self.lab.valves[valve]
        self.lab.call(board, lambda d: d.set_valve(channel, open))
        return {"valve": valve, "open": open, **self.lab.module_state(board)}

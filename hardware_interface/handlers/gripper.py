"""gripper.*: the cuvette gripper (a Robotiq 2F-85, driver robotiq_2f85): activate, move, grip,
stop, status.

Positions, speeds and forces are the gripper's own 0..255 counts (Robotiq's rPR, rSP, rFR):
position 0 is fully open and 255 fully closed; speed and force 255 are the fastest and strongest.
The daemon checks every value against those ranges before anything is sent. A gripper must be
activated (gripper.activate: it opens and closes once to calibrate) before it moves; a move
waits until the fingers stop, at the requested position or on an object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.devices.robotiq_2f85 import (
    CLOSED,
    GOBJ_AT_REQUEST,
    GOBJ_CONTACT_CLOSING,
    GOBJ_CONTACT_OPENING,
    GOBJ_MOVING,
    GSTA_ACTIVATED,
    OPEN,
    GripperStatus,
)
from hardware_interface.errors import DEVICE_ERROR, NOT_READY, AppError

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon

COUNT_MIN, COUNT_MAX = 0, 255  # position, speed and force (counts)
DEFAULT_SPEED = 255  # counts: full speed
DEFAULT_FORCE = 128  # counts: half force, enough for a glass cuvette without crushing it
# Lab seconds a move or an activation may take before NOT_READY: a full stroke at the slowest
# speed and the activation's calibration stroke each take a few seconds.
MOTION_TIMEOUT_S = 30.0
ACTIVATION_NAMES = {0: "reset", 1: "activating", 2: "unused", 3: "activated"}
OBJECT_NAMES = {
    GOBJ_MOVING: "moving",
    GOBJ_CONTACT_OPENING: "contact while opening",
    GOBJ_CONTACT_CLOSING: "contact while closing",
    GOBJ_AT_REQUEST: "at requested position",
}


class GripperMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def _module(self) -> str:
        gripper = next((d.id for d in self.lab.config.of_kind("gripper")), None)
        return self.lab.require(gripper, "gripper")

    def _read(self, gripper: str, check_fault: bool = True) -> GripperStatus:
        return self.lab.call(gripper, lambda d: d.status(), check_fault=check_fault)

    def _json(self, gripper: str, state: GripperStatus) -> dict[str, Any]:
        return {
            "module": gripper,
            "activated": state.activation == GSTA_ACTIVATED,
            "activation": ACTIVATION_NAMES[state.activation],
            "position": state.position,
            "position_request": state.request_echo,
            "object": OBJECT_NAMES[state.object] if state.going else "idle",
            "object_detected": state.going
            and state.object in (GOBJ_CONTACT_OPENING, GOBJ_CONTACT_CLOSING),
            "current_mA": state.current * 10,
            "fault_code": state.fault,
            "busy": state.busy,
            **self.lab.module_state(gripper, state.busy),
        }

    def _refuse_fault(self, gripper: str, state: GripperStatus) -> None:
        if state.fault:
            raise AppError(DEVICE_ERROR, gripper, f"{gripper}: the gripper reports fault gFLT "
                           f"0x{state.fault:02X}; gripper.activate (reset, then activate) may "
                           "clear it", fault_code=state.fault)  # fmt: skip

    def gripper_status(self) -> dict[str, Any]:
        """{"module", "activated", "activation", "position" (0 open .. 255 closed),
        "position_request", "object" (moving, contact while opening/closing, at requested
        position, idle), "object_detected", "current_mA", "fault_code" (Robotiq gFLT, 0: none),
        "busy", "state", "fault"}."""
        gripper = self._module()
        return self._json(gripper, self._read(gripper, check_fault=False))

    def gripper_activate(self) -> dict[str, Any]:
        """Activate the gripper (it opens and closes once to calibrate) and wait until it is
        ready; an activated gripper without a fault is left as it is (no stroke)."""
        gripper = self._module()
        state = self._read(gripper)
        if state.activation == GSTA_ACTIVATED and not state.fault:
            return self._json(gripper, state)

        def activate(driver: Any) -> None:
            driver.reset()  # clearing rACT first is how a fault is cleared
            driver.activate()

        self.lab.call(gripper, activate)
        self.lab.wait_until(
            lambda: self._read(gripper).activation == GSTA_ACTIVATED,
            0.0,
            MOTION_TIMEOUT_S,
            gripper,
            "activation",
        )
        return self.gripper_status()

    def gripper_move(
        self, position: int, speed: int = DEFAULT_SPEED, force: int = DEFAULT_FORCE
    ) -> dict[str, Any]:
        """Move the fingers to `position` (counts: 0 open .. 255 closed) at `speed` and `force`
        (counts 0..255) and wait until they stop, at the position or on an object."""
        gripper = self._module()
        safety.check_in_range(gripper, "position", position, COUNT_MIN, COUNT_MAX, "counts")
        safety.check_in_range(gripper, "speed", speed, COUNT_MIN, COUNT_MAX, "counts")
        safety.check_in_range(gripper, "force", force, COUNT_MIN, COUNT_MAX, "counts")
        state = self._read(gripper)
        if state.activation != GSTA_ACTIVATED:
            raise AppError(NOT_READY, gripper, f"{gripper}: the gripper is not activated "
                           f"({ACTIVATION_NAMES[state.activation]}); call gripper.activate "
                           "first")  # fmt: skip
        self._refuse_fault(gripper, state)
        self.lab.call(gripper, lambda d: d.go_to(position, speed, force))

        def stopped() -> bool:
            now = self._read(gripper)
            # the request echo proves the gripper took this request: gOBJ before it is stale
            return now.request_echo == position and not now.busy

        self.lab.wait_until(stopped, 0.0, MOTION_TIMEOUT_S, gripper, f"position {position}")
        state = self._read(gripper)
        self._refuse_fault(gripper, state)
        return self._json(gripper, state)

    def gripper_grip(
        self, closed: bool, speed: int = DEFAULT_SPEED, force: int = DEFAULT_FORCE
    ) -> dict[str, Any]:
        """Close the fingers (on the cuvette, `closed` true) or open them fully (false)."""
        return self.gripper_move(CLOSED if closed else OPEN, speed, force)

    def gripper_stop(self) -> dict[str, Any]:
        """Stop the fingers where they are (the activation is kept). A gripper that is not
        activated is not moving and is sent nothing: the driver's stop sets rACT, which would
        start an activation, and the activation strokes the fingers."""
        gripper = self._module()
        state = self._read(gripper, check_fault=False)
        if not state.activated:
            return self._json(gripper, state)
        self.lab.call(gripper, lambda d: d.stop(), check_fault=False)
        return self.gripper_status()

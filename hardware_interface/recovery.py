"""Recovery when a lease is taken: bring a lab that is not idle to its idle state.

Why: whoever drove the lab before (a core killed -9 after a fill, an operator's bench test) may
have left reagent in a syringe, the heater on or the arm away from home; the next holder's first
fill would then fail with an over-fill, and every later one too. The LeaseBook runs this routine
when a holder takes the lease, holding the lab's motion gate alone and after the former holder
is fenced.

Steps (only those needed, each one sentence returned to the new holder and logged at WARNING as
``recovery for <holder>: ...``): stop a pump still moving; switch the heater off; move the arm
to waste (the cuvette away from the reactor outlet, emptied there); empty each loaded syringe;
move the arm home. This rig's syringe pumps have one outlet, the reactor inlet (no waste valve),
so a syringe is emptied by infusing its content through the reactor, whose outlet goes to waste,
with the heater off and without the heater-stable interlock that ``pump.parallel`` applies. The
emptied reagent is not credited back to the stock ledger: it went to waste.

Before any step, every module the recovery needs is checked: one in a latched fault or not
connected refuses the whole recovery (FAULT / OFFLINE, naming the module; nothing was done), for
an operator to clear; faults are never cleared here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hardware_interface import lab_state, safety
from hardware_interface.errors import FAULT, NOT_READY, OFFLINE, AppError
from hardware_interface.handlers.heater import HeaterMethods
from hardware_interface.handlers.pumps import PumpMethods
from hardware_interface.handlers.robot import RobotMethods

if TYPE_CHECKING:  # the daemon imports this module for its recover_if_needed
    from hardware_interface.daemon import LabDaemon

log = logging.getLogger(__name__)

WASTE = "waste"  # the arm's position where its cuvette is emptied
# Empty a syringe at this fraction of the rate the pump and the lab allow: quick, yet gentler on
# the reactor tube than a full-speed push (each syringe is emptied alone).
FLUSH_RATE_FRACTION = 0.5
WIRE_STEP_ML = 1e-4  # the pumps' wire carries volumes in steps of 0.1 uL
MOVE_MARGIN_S = 60.0  # lab seconds a move may overrun its announced duration


@dataclass(frozen=True)
class Plan:
    """What the recovery has to do, from one survey of the lab."""

    moving: list[str]  # pumps still moving
    # pumps whose syringe holds reagent, or may: still moving (a stopped fill holds some),
    # unreadable while the journal does not say it is empty
    loaded: list[str]
    heater_on: bool
    arm_away: bool

    def modules(self, lab: LabDaemon) -> list[str]:
        """The modules the steps use, in the order they are checked. The heater is among them
        whenever anything moves: every wait of the daemon watches its temperature."""
        needed = list(self.loaded)  # every moving pump is among them
        acting = bool(needed) or self.heater_on or self.arm_away
        if lab.heater is not None and acting:
            needed.append(lab.heater)
        if lab.robot is not None and (self.arm_away or self.loaded):
            needed.append(lab.robot)
        return needed


def plan(lab: LabDaemon, survey: lab_state.Survey) -> Plan:
    reading, belief = survey.reading, survey.belief
    moving = [p for p, r in reading.pumps.items() if r.busy]
    loaded = []
    for pump, got in reading.pumps.items():
        known = belief.syringes.get(pump)
        if got.volume_mL is not None:
            if got.volume_mL > safety.VOLUME_SLACK_ML or got.busy:
                loaded.append(pump)
        elif known is None or known.loaded:  # unreadable: trust only a journal saying empty
            loaded.append(pump)
    heater_on = False
    if reading.heater is not None:
        if reading.heater.readable:
            heater_on = reading.heater.setpoint_C is not None
        else:
            heater_on = belief.heater is None or belief.heater.setpoint_C is not None
    arm_away = False
    if reading.arm is not None:
        where = reading.arm.position if reading.arm.position is not None else belief.arm
        arm_away = reading.arm.busy or where != lab_state.HOME
    return Plan(moving, loaded, heater_on, arm_away)


def _problem(lab: LabDaemon, reading: lab_state.LabReading, module: str) -> str | None:
    """Why ``module`` could not be read in this survey (None: it was read)."""
    if module in reading.pumps:
        return reading.pumps[module].problem
    if module == lab.heater and reading.heater is not None:
        return reading.heater.problem
    if module == lab.robot and reading.arm is not None:
        return reading.arm.problem
    return None


def _refusal(lab: LabDaemon, holder: str, survey: lab_state.Survey, module: str) -> AppError | None:
    """The error refusing the recovery because of ``module``; None when the module is usable
    (no latched fault, connected, read in this survey)."""
    tail = f"; nothing was done (the lab is not idle: {'; '.join(survey.not_idle)})"
    fault = lab.faults.fault(module)
    if fault is not None:
        return AppError(
            FAULT,
            module,
            f"recovery for {holder} could not run: {module} is in a latched fault ({fault})"
            f"{tail}. Make the lab safe, clear the fault (system.reset_faults) and take the "
            "lease again",
            fault=fault,
            not_idle=survey.not_idle,
        )
    problem = _problem(lab, survey.reading, module) or lab.faults.offline(module)
    if problem is None:
        return None
    return AppError(
        OFFLINE,
        module,
        f"recovery for {holder} could not run: {module} is not connected ({problem}){tail}",
        fault=problem,
        not_idle=survey.not_idle,
    )


def recover(lab: LabDaemon, holder: str) -> list[str]:
    """Bring the lab to idle for ``holder``; the steps taken, one sentence each ([]: idle)."""
    survey = lab_state.survey(lab)
    if survey.idle:
        return []
    todo = plan(lab, survey)
    for module in todo.modules(lab):
        refusal = _refusal(lab, holder, survey, module)
        if refusal is not None:
            log.error("cannot recover the lab: %s", refusal.message)
            raise refusal
    # Not worded "recovery for ...: ": that prefix marks the steps themselves in the log.
    log.warning("%s takes a lab that is not idle: %s", holder, "; ".join(survey.not_idle))
    steps = _Steps(holder)
    pumps = PumpMethods(lab)
    for pump in todo.moving:
        state = pumps.pump_stop(pump)
        steps.done(f"stopped {pump}, which was still moving (it holds {state['volume_mL']:.4f} mL)")
    if todo.heater_on and lab.heater is not None:
        before = survey.reading.heater.setpoint_C if survey.reading.heater else None
        HeaterMethods(lab).heater_off()
        was = f" (it was set to {before:g} °C)" if before is not None else ""
        steps.done(f"switched the heater {lab.heater} off{was}")
    arm = RobotMethods(lab)
    if todo.loaded and lab.robot is not None and WASTE in lab.config.devices[lab.robot].positions:
        _move_arm(lab, arm, WASTE, steps, "its cuvette emptied there and kept away from the "
                  "reactor outlet while the syringes are flushed")  # fmt: skip
    for pump in todo.loaded:
        emptied = _empty(lab, pump)
        if emptied:
            steps.done(emptied)
    if lab.robot is not None and (todo.arm_away or todo.loaded):
        _move_arm(lab, arm, lab_state.HOME, steps, "")
    after = lab_state.survey(lab)
    if not after.idle:
        first = todo.loaded[0] if todo.loaded else (lab.heater or lab.robot or "lab")
        raise AppError(
            NOT_READY,
            first,
            f"recovery for {holder} did not make the lab idle: {'; '.join(after.not_idle)} "
            f"(done: {'; '.join(steps.actions) or 'nothing'})",
            not_idle=after.not_idle,
            recovered=steps.actions,
        )
    return steps.actions


class _Steps:
    """The steps taken, each logged at WARNING the moment it is done."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.actions: list[str] = []

    def done(self, action: str) -> None:
        log.warning("recovery for %s: %s", self.holder, action)
        self.actions.append(action)


def _move_arm(lab: LabDaemon, arm: RobotMethods, position: str, steps: _Steps, why: str) -> None:
    """Move the arm to ``position`` (after any move in progress ends), if it is not there."""
    robot = lab.require(lab.robot, "robot")
    lab.wait_until(
        lambda: not lab.call(robot, lambda d: d.position()[1]),
        0.0,
        MOVE_MARGIN_S,
        robot,
        "the arm at rest",
    )
    where, _ = lab.call(robot, lambda d: d.position())
    if where == position:
        return
    arm.robot_move(position)
    steps.done(f"moved the arm {robot} from {where} to {position}" + (f", {why}" if why else ""))


def _empty(lab: LabDaemon, pump: str) -> str | None:
    """Infuse the syringe's whole content through the reactor to waste; the sentence saying so
    (None when it turned out empty). Not booked in the stock ledger: it went to waste."""
    dev = lab.config.devices[pump]
    held = lab.call(pump, lambda d: d.status().volume_mL)
    # Whole wire steps, rounded down: never ask the pump for more than it holds.
    volume = math.floor(held / WIRE_STEP_ML + 1e-6) * WIRE_STEP_ML
    if volume <= safety.VOLUME_SLACK_ML:
        return None
    known = lab.belief.current().syringes.get(pump)
    reagent = known.reagent if known is not None and known.reagent else dev.reagent
    rate = min(dev.max_rate_mL_min, lab.limits.max_flow_mL_min) * FLUSH_RATE_FRACTION
    duration = lab.call(pump, lambda d: d.infuse(volume, rate))
    lab.belief.note_syringe(pump, held - volume, reagent)
    lab.wait_until(
        lambda: not lab.call(pump, lambda d: d.status().busy),
        duration,
        duration + MOVE_MARGIN_S,
        pump,
        "its syringe emptied",
    )
    left = lab.call(pump, lambda d: d.status().volume_mL)
    lab.belief.note_syringe(pump, left, reagent)
    return (
        f"emptied {pump} through the reactor to waste: {volume:.4f} mL of {reagent} at "
        f"{rate:g} mL/min (not returned to the stock ledger)"
    )

"""What the daemon believes about its lab, kept in its journal and checked against the instruments.

Why: a core killed -9 right after ``pump.fill`` leaves reagent in a syringe, and real hardware
keeps it there across any restart of the core or of the daemon. The daemon therefore records,
after every moving call, what it believes each syringe holds (and of which reagent), the heater's
setpoint and where the arm is, in its journal on the lab PC (hardware_interface.journal), so that
the belief survives a daemon restart. The stock ledger (mL left in each stock bottle) lives in
the same journal.

The instruments are the truth wherever they can report it: a pump reports its volume, the heater
board its setpoint and temperature, the arm its position. ``survey`` reads them, compares them
with the journal, keeps the instrument's value where they disagree, logs each disagreement at
WARNING and reports it. The reagent in a syringe is the one thing no instrument reports: it comes
from the journal, or, for a syringe the journal knows nothing about, from the reagent the pump is
plumbed to.

The lab is *idle* when no syringe holds more than safety.VOLUME_SLACK_ML and none is moving, the
heater is off or at a safe setpoint (SAFE_SETPOINT_C), and the arm rests at home. A holder taking
the lease on a lab that is not idle gets it recovered first (hardware_interface.recovery).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.journal import Journal, JournalError
from hardware_interface.jsonrpc import RpcError

if TYPE_CHECKING:  # the daemon imports this module to keep its belief
    from hardware_interface.daemon import LabDaemon

log = logging.getLogger(__name__)

BELIEF_KEY = "lab"  # journal key of the physical state the daemon believes
STOCK_KEY = "stock"  # journal key of the stock ledger (reagent -> mL)
HOME = "home"  # the arm's resting position
# A heater holding at most this is safe to leave on: warm to the touch, and no chemistry of
# these rigs reacts at it (their setpoints start near 100 °C).
SAFE_SETPOINT_C = 40.0
# Journal and pump agree within this: the wire carries 0.1 uL, and a fill ends within the
# slack the safety checks allow (VOLUME_SLACK_ML) of what was asked.
VOLUME_TOLERANCE_ML = 1e-3
SETPOINT_TOLERANCE_C = 0.05  # the heater board reports its setpoint with one decimal


# -- the belief ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyringeContent:
    """What one syringe holds: ``volume_mL`` (mL) of ``reagent`` (None when empty)."""

    volume_mL: float
    reagent: str | None

    @property
    def loaded(self) -> bool:
        return self.volume_mL > safety.VOLUME_SLACK_ML


@dataclass(frozen=True)
class HeaterSetting:
    """The heater's setpoint (°C); None: off."""

    setpoint_C: float | None


@dataclass(frozen=True)
class Belief:
    """The physical state the daemon believes. A pump missing from ``syringes``, ``heater``
    None or ``arm`` None: nothing known yet (a fresh journal), so nothing to disagree with."""

    syringes: dict[str, SyringeContent] = field(default_factory=dict)
    heater: HeaterSetting | None = None
    arm: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "syringes": {
                pump: {"volume_mL": round(s.volume_mL, 6), "reagent": s.reagent}
                for pump, s in self.syringes.items()
            },
            "heater": None if self.heater is None else {"setpoint_C": self.heater.setpoint_C},
            "arm": self.arm,
        }


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def belief_from_json(data: Any, pumps: list[str]) -> Belief:
    """The belief the journal holds; an entry that does not make sense counts as unknown (and
    is logged), since the instruments are read before the belief is relied on."""
    if data is None:
        return Belief()
    if not isinstance(data, dict):
        log.warning("journal: %r under %r is not an object; the lab state is unknown", data,
                    BELIEF_KEY)  # fmt: skip
        return Belief()
    syringes: dict[str, SyringeContent] = {}
    raw_syringes = data.get("syringes")
    for pump, entry in (raw_syringes if isinstance(raw_syringes, dict) else {}).items():
        if pump not in pumps:
            continue  # a pump removed from the lab configuration since
        volume = entry.get("volume_mL") if isinstance(entry, dict) else None
        reagent = entry.get("reagent") if isinstance(entry, dict) else None
        if _finite(volume) and volume >= 0 and (reagent is None or isinstance(reagent, str)):
            syringes[pump] = SyringeContent(float(volume), reagent)
        else:
            log.warning("journal: syringe entry of %s %r makes no sense; unknown", pump, entry)
    heater = None
    raw_heater = data.get("heater")
    if isinstance(raw_heater, dict):
        setpoint = raw_heater.get("setpoint_C")
        if setpoint is None or _finite(setpoint):
            heater = HeaterSetting(None if setpoint is None else float(setpoint))
    arm = data.get("arm")
    return Belief(syringes, heater, arm if isinstance(arm, str) else None)


class BeliefStore:
    """The belief, persisted in the journal after every change; thread-safe.

    A journal that cannot be written (disk full) must not turn a pump move that happened into a
    failed call: the error is logged and the belief stays in memory until a write succeeds.
    """

    def __init__(self, journal: Journal, pumps: list[str]) -> None:
        self.journal = journal
        self._lock = threading.Lock()
        self._belief = belief_from_json(journal.read(BELIEF_KEY), pumps)

    def current(self) -> Belief:
        with self._lock:
            return self._belief

    def replace(self, belief: Belief) -> None:
        with self._lock:
            if belief != self._belief:
                self._belief = belief
                self._save()

    def note_syringe(self, pump: str, volume_mL: float, reagent: str | None) -> None:
        """After a pump move: the syringe will hold ``volume_mL`` (mL) of ``reagent``."""
        volume = max(float(volume_mL), 0.0)
        content = SyringeContent(volume, reagent if volume > safety.VOLUME_SLACK_ML else None)
        with self._lock:
            self._belief = replace(self._belief, syringes={**self._belief.syringes, pump: content})
            self._save()

    def note_heater(self, setpoint_C: float | None) -> None:
        """After heater.set (the setpoint, °C) or heater.off / an emergency stop (None)."""
        with self._lock:
            self._belief = replace(self._belief, heater=HeaterSetting(setpoint_C))
            self._save()

    def note_arm(self, position: str) -> None:
        """After robot.move: the arm goes to ``position``."""
        with self._lock:
            self._belief = replace(self._belief, arm=position)
            self._save()

    def _save(self) -> None:
        try:
            self.journal.write(**{BELIEF_KEY: self._belief.to_json()})
        except JournalError as exc:
            log.error("lab state not saved: %s; it is kept in memory until a write succeeds", exc)


# -- the stock ledger ---------------------------------------------------------------------------
def load_stock(journal: Journal, configured: dict[str, float]) -> dict[str, float]:
    """The stock ledger: the configuration's reagents, with the amounts the journal saved.

    The configuration names the bottles (a reagent added to it appears, one removed
    disappears); the journal knows what was drawn from them and poured in since.
    """
    saved = journal.read(STOCK_KEY) or {}
    stock = dict(configured)
    if isinstance(saved, dict):
        for name, amount in saved.items():
            if name in stock and _finite(amount):
                stock[name] = float(amount)
    return stock


def save_stock(journal: Journal, stock: dict[str, float]) -> None:
    """Persist the ledger (the caller holds the daemon's ledger lock)."""
    try:
        journal.write(**{STOCK_KEY: {name: round(ml, 9) for name, ml in stock.items()}})
    except JournalError as exc:
        log.error("stock ledger not saved: %s; it is kept in memory until a write succeeds", exc)


# -- what the instruments report ----------------------------------------------------------------
@dataclass(frozen=True)
class PumpReading:
    """A pump's report; ``volume_mL`` None when it could not be read (``problem`` says why)."""

    volume_mL: float | None
    busy: bool = False
    problem: str | None = None
    problem_code: int | None = None


@dataclass(frozen=True)
class HeaterReading:
    """The heater board's report; ``readable`` False when it could not be read."""

    readable: bool
    setpoint_C: float | None = None
    temperature_C: float | None = None
    stable: bool = False
    problem: str | None = None
    problem_code: int | None = None


@dataclass(frozen=True)
class ArmReading:
    """The arm's report; ``position`` None when it could not be read."""

    position: str | None
    busy: bool = False
    problem: str | None = None
    problem_code: int | None = None


@dataclass(frozen=True)
class LabReading:
    pumps: dict[str, PumpReading]
    heater: HeaterReading | None  # None: the lab has no heater
    arm: ArmReading | None  # None: the lab has no arm


def read_lab(lab: LabDaemon) -> LabReading:
    """Read every pump, the heater and the arm (a module that cannot be read is reported so,
    not raised: the survey must show the whole lab)."""
    pumps: dict[str, PumpReading] = {}
    for pump in lab.pumps:
        try:
            state = lab.call(pump, lambda d: d.status(), check_fault=False)
            pumps[pump] = PumpReading(state.volume_mL, state.busy)
        except RpcError as exc:
            pumps[pump] = PumpReading(None, problem=exc.message, problem_code=exc.code)
    heater = None
    if lab.heater is not None:
        try:
            hs = lab.heater_state()
            heater = HeaterReading(True, hs.setpoint_C, hs.temperature_C, hs.stable)
        except RpcError as exc:
            heater = HeaterReading(False, problem=exc.message, problem_code=exc.code)
    arm = None
    if lab.robot is not None:
        try:
            where, busy = lab.call(lab.robot, lambda d: d.position(), check_fault=False)
            arm = ArmReading(where, busy)
        except RpcError as exc:
            arm = ArmReading(None, problem=exc.message, problem_code=exc.code)
    return LabReading(pumps, heater, arm)


# -- reconciliation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Discrepancy:
    """The journal said ``journal``, the instrument reports ``instrument``; the instrument wins."""

    module: str
    quantity: str  # volume_mL, setpoint_C or position
    journal: Any
    instrument: Any

    @property
    def message(self) -> str:
        return (
            f"{self.module}: the journal says {self.quantity} = {self.journal}, the instrument "
            f"reports {self.instrument}; the instrument's value is kept"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "quantity": self.quantity,
            "journal": self.journal,
            "instrument": self.instrument,
            "message": self.message,
        }


def reconcile(
    belief: Belief,
    reading: LabReading,
    plumbed: dict[str, str | None],
    heater: str | None,
    robot: str | None,
) -> tuple[Belief, list[Discrepancy]]:
    """The belief corrected by the reading, and where the two disagreed.

    A module that could not be read keeps its belief. A moving pump or arm is not compared:
    it is on its way to what the journal recorded when the move was sent.
    """
    found: list[Discrepancy] = []
    syringes = dict(belief.syringes)
    for pump, got in reading.pumps.items():
        if got.volume_mL is None or got.busy:
            continue
        known = syringes.get(pump)
        if known is not None and abs(known.volume_mL - got.volume_mL) > VOLUME_TOLERANCE_ML:
            found.append(
                Discrepancy(pump, "volume_mL", round(known.volume_mL, 4), round(got.volume_mL, 4))
            )
        # The pump cannot tell what it holds: keep the journal's reagent, else the plumbed one.
        reagent = known.reagent if known is not None and known.reagent else plumbed.get(pump)
        syringes[pump] = SyringeContent(
            got.volume_mL, reagent if got.volume_mL > safety.VOLUME_SLACK_ML else None
        )
    heater_belief = belief.heater
    if heater is not None and reading.heater is not None and reading.heater.readable:
        got_sp = reading.heater.setpoint_C
        if heater_belief is not None and not _same_setpoint(heater_belief.setpoint_C, got_sp):
            found.append(Discrepancy(heater, "setpoint_C", heater_belief.setpoint_C, got_sp))
        heater_belief = HeaterSetting(got_sp)
    arm = belief.arm
    if robot is not None and reading.arm is not None and reading.arm.position is not None:
        if not reading.arm.busy:
            if arm is not None and arm != reading.arm.position:
                found.append(Discrepancy(robot, "position", arm, reading.arm.position))
            arm = reading.arm.position
    return Belief(syringes, heater_belief, arm), found


def _same_setpoint(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= SETPOINT_TOLERANCE_C


def not_idle_reasons(
    reading: LabReading, belief: Belief, heater: str | None, robot: str | None
) -> list[str]:
    """Why the lab is not idle, one sentence each; [] when it is. A module that cannot be read
    is judged by the journal, and counts as not idle when the journal knows nothing of it."""
    reasons: list[str] = []
    for pump, got in reading.pumps.items():
        known = belief.syringes.get(pump)
        if got.volume_mL is not None:
            if got.busy:
                reasons.append(f"{pump} is moving")
            if got.volume_mL > safety.VOLUME_SLACK_ML:
                what = known.reagent if known is not None and known.reagent else "reagent"
                reasons.append(f"{pump} holds {got.volume_mL:.4f} mL of {what}")
        elif known is None:
            reasons.append(f"{pump} cannot be read ({got.problem}) and the journal has no record "
                           "of its syringe")  # fmt: skip
        elif known.loaded:
            reasons.append(f"{pump} holds {known.volume_mL:.4f} mL of {known.reagent} by the "
                           f"journal (it cannot be read: {got.problem})")  # fmt: skip
    if heater is not None and reading.heater is not None:
        if reading.heater.readable:
            setpoint = reading.heater.setpoint_C
        elif belief.heater is not None:
            setpoint = belief.heater.setpoint_C
        else:
            setpoint = math.inf  # unknown: as unsafe as can be
        if setpoint is not None and setpoint > SAFE_SETPOINT_C:
            shown = "at an unknown setpoint" if math.isinf(setpoint) else f"at {setpoint:g} °C"
            reasons.append(f"heater {heater} is on {shown} (safe: off or at most "
                           f"{SAFE_SETPOINT_C:g} °C)")  # fmt: skip
    if robot is not None and reading.arm is not None:
        where = reading.arm.position if reading.arm.position is not None else belief.arm
        if reading.arm.busy:
            reasons.append(f"arm {robot} is moving to {where}")
        elif where != HOME:
            reasons.append(f"arm {robot} is at {where or 'an unknown position'}, not {HOME}")
    return reasons


# -- one look at the lab ------------------------------------------------------------------------
@dataclass(frozen=True)
class Survey:
    """One reading of the lab, compared with the journal.

    before: the journal's belief when the lab was read; belief: after reconciliation.
    reconciled: False when a moving call was executing (the journal may lag the instruments by
    that call, so nothing was compared or corrected).
    """

    reading: LabReading
    before: Belief
    belief: Belief
    discrepancies: list[Discrepancy]
    reconciled: bool
    not_idle: list[str]

    @property
    def idle(self) -> bool:
        return not self.not_idle


def survey(lab: LabDaemon) -> Survey:
    """Read the lab and reconcile the journal with it (the instrument wins, logged at WARNING).

    Reconciling takes the lab's motion gate alone without waiting: a moving call holds it from its
    command to its journal note, and a comparison in between would report a false discrepancy.
    """
    motion = lab.lease.motion
    quiet = motion.acquire(blocking=False)
    try:
        reading = read_lab(lab)
        before = lab.belief.current()
        found: list[Discrepancy] = []
        belief = before
        if quiet:
            plumbed = {p: lab.config.devices[p].reagent for p in lab.pumps}
            belief, found = reconcile(before, reading, plumbed, lab.heater, lab.robot)
            for disagreement in found:
                log.warning("lab state: %s", disagreement.message)
            lab.belief.replace(belief)
    finally:
        if quiet:
            motion.release()
    reasons = not_idle_reasons(reading, belief, lab.heater, lab.robot)
    return Survey(reading, before, belief, found, quiet, reasons)

"""One request's closed loop (the paper's HANDLE_REQUEST), crash-safe.

Each experiment is two transactions. The first writes the experiment row as ``running`` with
its parameters; the second, after the hardware ran and the analyzer scored the spectra, writes
the result, spectra, fits, features, the encrypted audit log, the optimizer's told state and the
request's progress all at once. A crash between the two leaves a ``running`` row: on resume it
is marked ``aborted`` and, because the optimizer restarts from the state checkpointed with the
previous result and is deterministic under its seed, the same point is run again: the
experiment is redone, nothing is stored twice and nothing is lost.

The optimizer proposes ``nreq`` points per call (a batch); they run one after another, each
result told as it arrives. The checkpoint keeps a batch's points not yet told as the
optimizer's pending points, so a resumed run finishes that batch before it asks again; a crash
in a batch's first point leaves nothing pending, and the repeated ask proposes the same batch.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from maosic import pipeline, plans
from maosic.analysis.errors import SpectrumError
from maosic.analysis.reward import compute_reward
from maosic.batching import group_calls
from maosic.crate import IMPORTED_PREFIX
from maosic.db.crypto import LogCipher
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Feature,
    HardwareCommand,
    PeakFit,
    PlannedPoint,
    Request,
    RequestStatus,
    Spectrum,
    utcnow,
)
from maosic.db.session import run_transaction, transaction
from maosic.fencing import ClaimLost, Fence
from maosic.hardware import (
    LAB_LEASED,
    LEASE_TAKEN,
    MODULE_FAULT,
    MODULE_OFFLINE,
    CallRecord,
    HardwareClient,
    HardwareError,
    HardwareLost,
    HardwareUnreachable,
    LinkConfigError,
)
from maosic.language.compiler import Program, compile_config
from maosic.language.config import ReactionConfig, load_config
from maosic.language.errors import LanguageError
from maosic.optimize.base import Optimizer
from maosic.optimize.registry import make_optimizer, optimizer_class, restore_optimizer
from maosic.phases import ExperimentTiming, Stopwatch
from maosic.resources import LabNotReady, ResourceProblem, check_resources
from maosic.steady_state import STEADY_IDLE_CHECKS, SteadyRun

log = logging.getLogger(__name__)
T = TypeVar("T")

# Daemon method -> the spectra its result holds: (kind, unit, key of the values). The CD
# spectrometer measures absorbance on the same sample, so one ABS-CD call yields both.
SPECTRUM_METHODS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "spectrometer.absorbance": (("absorbance", "OD", "absorbance"),),
    "spectrometer.cd": (("cd", "mdeg", "cd_mdeg"), ("absorbance", "OD", "absorbance")),
    "spectrometer.pl": (("pl", "counts", "intensity"),),
}
SPECTRUM_UNITS: dict[str, tuple[str, str]] = {
    kind: (unit, key) for kinds in SPECTRUM_METHODS.values() for kind, unit, key in kinds
}
# Feature name suffix -> unit, so the features table says what each number is; then whole
# names whose unit the name does not carry (absorbance in OD, PL in detector counts).
FEATURE_UNITS: dict[str, str] = {"_nm": "nm", "_mdeg": "mdeg", "_pct": "%", "_od": "OD"}
FEATURE_NAME_UNITS: dict[str, str] = {
    "exciton_absorbance": "OD",
    "exciton_height": "OD",
    "exciton_area": "OD nm",
    "abs_300nm": "OD",
    "pl_intensity": "counts",
    "pl_area": "counts nm",
    "pl_total_area": "counts nm",
    "plqy_proxy": "a.u.",
    "steady_state_s": "s",
}
DB_RETRIES = 8  # about two minutes of backoff: long enough for a database restart
# Experiments the lab refuses in a row (same point, each redone) before the request pauses: a
# pause releases the lease, and taking it again recovers the lab if it is not idle.
LAB_FAILURES_IN_A_ROW = 3
# Lab failures a request may suffer in all before it fails (budget / 10 more for long ones):
# a lab that refuses everything must not burn reagent for ever.
LAB_FAILURES_MAX = 10
# An experiment whose own calls went well, aborted because the one beside it failed (pipelined,
# maosic/pipeline.py) or the core restarted: redone, and not counted among the lab's failures.
CUT_OFF = "cut off"
# The per-experiment writes go to the tables, not through the ORM's unit of work: the rows are
# new or updated by key, nothing is read back, and the ORM's bookkeeping cost more than the SQL.
EXPERIMENTS = Experiment.__table__
SPECTRA = Spectrum.__table__
PEAK_FITS = PeakFit.__table__
FEATURES = Feature.__table__
HARDWARE_COMMANDS = HardwareCommand.__table__
REQUESTS = Request.__table__


class CampaignPaused(RuntimeError):
    """The lab cannot go on now (daemon gone, module in fault); the request waits for it."""


class LabFailure(RuntimeError):
    """The lab lost the experiment (it refused a command): redone with the same parameters,
    not counted against the budget and not told to the optimizer."""


class LabTaken(RuntimeError):
    """Our lease on the lab was superseded (an operator took the lab, or another core after
    our lease expired): stop driving at once; pause the request if it is still ours."""


class CampaignLinkFailed(RuntimeError):
    """The link to the daemon is misconfigured (token, CA, client certificate): waiting cannot
    mend it, so the request fails with the setting to fix instead of pausing for ever."""


def _link_failure(exc: LinkConfigError) -> str:
    return f"the core cannot use the hardware daemon: {exc}"


@dataclass
class Outcome:
    status: RequestStatus
    reason: str
    experiments_run: int = 0


@dataclass
class CampaignContext:
    """What a campaign needs from the process running it."""

    sessions: sessionmaker[Session]
    client_factory: Callable[[Callable[[CallRecord], None]], HardwareClient]
    cipher: LogCipher
    worker: str = "worker"
    heartbeat_s: float = 10.0
    should_stop: Callable[[], bool] = field(default=lambda: False)
    # Called with each stored experiment's phase timings (the campaign benchmark prints them).
    on_timing: Callable[[ExperimentTiming], None] | None = None
    # The claim this campaign runs under: every write checks it (maosic.fencing). None runs
    # unfenced (one process, no lease: the terminal campaign and tests).
    fence: Fence | None = None
    # What the daemon did to recover the lab when this run's lease was taken (audit-logged).
    recovered: list[str] = field(default_factory=list)


DEFAULT_METRIC = "max_abs_cd_at_exciton"  # the paper's: -|CD| at the first exciton peak is the loss


# Without a metric (a bare formula), the target follows what the reaction measures: the first
# code of this table the experiment has. A CD measurement scores |CD| as the paper does; a
# reaction that only reads photoluminescence (the Cs3Cu2I5 rig) scores its PLQY proxy.
METRIC_BY_MEASUREMENT: tuple[tuple[str, str], ...] = (
    ("ABS-CD", "max_abs_cd_at_exciton"),
    ("CD", "max_abs_cd_at_exciton"),
    ("PL", "max_plqy"),
)


def default_target(config: ReactionConfig) -> dict[str, Any]:
    """The configuration's ``metric`` (a name, a target object or the paper's array form); for
    a configuration without one, the metric of what its experiment measures."""
    fallback = DEFAULT_METRIC
    if not config.metric:
        codes = {inst.get("code") for inst in config.experiment}
        fallback = next((m for code, m in METRIC_BY_MEASUREMENT if code in codes), fallback)
    return config.target(fallback)


def configured_options(config: ReactionConfig, optimizer: str) -> dict[str, Any]:
    """The configuration's optimizer options when ``optimizer`` (the request's) is the
    configuration's optimizer; none when the submission named another one, which then runs
    with its own defaults (options are meaningful only to the optimizer they were written for).
    """
    if config.optimizer_name is None or config.optimizer_name != optimizer:
        return {}
    return config.optimizer_options


def batch_size(nreq: Any, optimizer: str) -> int:
    """Points per optimizer call: the configuration's ``nreq``; 0 (or none) means the
    optimizer's own ``default_batch``."""
    if isinstance(nreq, int) and not isinstance(nreq, bool) and nreq > 0:
        return nreq
    try:
        return optimizer_class(optimizer).default_batch
    except ValueError:  # an optimizer this core no longer has: building it says so
        return 1


@dataclass
class _Batch:
    """The points one optimizer call proposed, run one after another (``nreq`` per call)."""

    number: int = 0  # the request's 1st, 2nd, ... ask; 0 before the first
    size: int = 0  # points the ask returned
    points: list[dict[str, float]] = field(default_factory=list)  # not yet stored, in order

    @classmethod
    def asked(cls, optimizer: Optimizer, number: int, n: int) -> _Batch:
        points = optimizer.ask(n) if n > 0 else []
        return cls(number=number, size=len(points), points=points)

    def describe(self) -> str:
        """Where the next point stands, e.g. ``batch 3: point 2 of 4``."""
        return f"batch {self.number}: point {self.size - len(self.points) + 1} of {self.size}"


@dataclass
class _Job:
    """One experiment of this run: its row and where its point came from."""

    number: int
    experiment_id: int
    point: dict[str, float]
    planned: PlannedPoint | None
    batch: _Batch


@dataclass
class _InFlight:
    """An experiment whose sample is being measured while the next synthesis runs."""

    job: _Job
    parts: pipeline.Split
    flight: pipeline.Flight
    records: list[CallRecord]  # its audit log: the synthesis's calls, then the measurement's
    start: float | None  # the lab clock when its synthesis began
    phases_ms: dict[str, float]  # the software time of its own iteration (ask, begin, ...)
    round_trips: int  # of its synthesis


def _why_stop(
    budget: int,
    goal: float | None,
    patience: int | None,
    cancel_requested: bool,
    n_counted: int,
    rewards: list[float | None],
    best: float | None,
) -> tuple[RequestStatus, str] | None:
    """The status and reason the request ends with now, or None while it goes on."""
    if cancel_requested:
        return RequestStatus.CANCELLED, "cancelled by the user"
    if goal is not None and best is not None and best >= float(goal):
        return RequestStatus.DONE, f"target reached: reward {best:.4g} >= goal {goal}"
    if n_counted >= budget:
        return RequestStatus.DONE, f"budget of {budget} experiments used"
    if patience:
        scored = [(r, i) for i, r in enumerate(rewards) if r is not None]
        if scored and n_counted - 1 - max(scored)[1] >= int(patience):
            return RequestStatus.DONE, f"no improvement in the last {patience} experiments"
    return None


class Campaign:
    def __init__(self, ctx: CampaignContext, request_id: int):
        self.ctx = ctx
        self.request_id = request_id
        self._calls: list[CallRecord] = []
        # Where the daemon clients' call records go: this experiment's audit log. A pipelined
        # run points them at the experiment each client is working for (maosic/pipeline.py).
        self._sink = self._calls
        self._client = ctx.client_factory(lambda record: self._sink.append(record))
        self._client2: HardwareClient | None = None  # the characterization's, when pipelined
        self._sink2: list[CallRecord] = []
        self._flight: _InFlight | None = None  # the experiment whose sample is being measured
        self._ran = 0  # experiments stored in this run
        self._budget = 0
        self._landing_failed = False  # the last measurement waited for failed in the lab
        self._in_a_row = 0  # lab failures in a row
        self._step_written = 0.0
        self._watch = Stopwatch()
        self._initialised = False  # the configuration's init list has run in this run
        # The best earlier experiment of the same reaction (reward, request id, number), when
        # the optimizer was preloaded with that history.
        self._history_best: tuple[float, int, int] | None = None
        self._optimizer_name = ""
        self._steady_state: dict[str, Any] | None = None  # the configuration's steady_state

    # -- public -------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Run (or resume) the request until it is done, failed, cancelled or paused."""
        beat = _Heartbeat(self.ctx.sessions, self.request_id, self.ctx.heartbeat_s, self.ctx.fence)
        beat.start()
        try:
            return self._run()
        except ClaimLost as exc:
            # Another worker runs this request now: everything this one had not written is
            # dropped (the transaction that found out was rolled back), and it writes nothing.
            log.warning("request %s: %s", self.request_id, exc)
            return Outcome(RequestStatus.RUNNING, str(exc))
        finally:
            if self._flight is not None:  # its calls end (a lost lease refuses them): wait
                try:
                    self._flight.flight.join()
                except Exception as exc:  # noqa: BLE001 - the run's own outcome is what counts
                    log.info("request %s: measurement in flight ended: %s", self.request_id, exc)
            beat.stop()
            self._client.close()
            if self._client2 is not None:
                self._client2.close()

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> Outcome:
        try:
            config, program, target, budget, optimizer = self._prepare()
        except (LanguageError, ValueError) as exc:
            return self._finish(
                RequestStatus.FAILED, f"the reaction configuration is invalid: {exc}"
            )
        except ResourceProblem as exc:
            return self._finish(RequestStatus.FAILED, str(exc))
        except LabNotReady as exc:
            return self._pause(f"{exc}; it resumes once an operator has cleared the fault")
        except LinkConfigError as exc:  # before HardwareUnreachable/HardwareError: it is both
            return self._fail_link(_link_failure(exc))
        except (HardwareUnreachable, HardwareLost) as exc:
            return self._pause(f"the hardware daemon does not answer: {exc}")
        goal = target.get("goal")
        patience = target.get("patience")
        # With ``confirm`` the goal is judged on replicates this request runs, never on one
        # earlier reading.
        if goal is not None and not target.get("confirm") and self._history_best is not None:
            reward, request_id, number = self._history_best
            if reward >= float(goal):
                return self._finish_from_history(reward, request_id, number, float(goal))
        confirm = int(target.get("confirm") or 0) if goal is not None else 0
        given_only = self._optimizer_name == plans.POINTS  # runs its planned points, no more
        # Overlap the next synthesis with this sample's measurement (maosic/pipeline.py), except
        # where each result decides the next step at once: repeated in-situ readings until steady,
        # and replicates confirming a best.
        pipelined = config.pipeline and self._steady_state is None and not confirm
        self._budget = budget
        watch = self._watch
        per_ask = batch_size(config.nreq, optimizer.name)
        batch = self._resume_batch(optimizer)
        while True:
            watch.restart()
            round_trips = self._client.round_trips
            flight = self._flight
            with watch.phase("stop check"):
                if confirm:
                    # The goal is judged on the mean of the best and its replicates; the
                    # replicates run even when the budget is used (they are not counted in it).
                    stop, counted = self._stop_reason(budget, None, patience)
                    reached = self._confirmed(float(goal), confirm)
                    planned = self._next_planned()
                    cancelled = stop is not None and stop[0] == RequestStatus.CANCELLED
                    if reached is not None and not cancelled:
                        stop = reached
                    elif (
                        stop is not None
                        and stop[0] == RequestStatus.DONE
                        and planned is not None
                        and planned.chosen_by == plans.CONFIRM
                    ):
                        stop = None
                else:
                    stop, counted = self._stop_reason(budget, goal, patience)
                    skip = flight.job.planned.id if flight and flight.job.planned else None
                    planned = self._next_planned(skip=skip)
            if flight is not None and (
                stop is not None
                or self.ctx.should_stop()
                or counted + 1 >= budget
                or (given_only and planned is None)
            ):
                # Whether to go on depends on the sample still being measured: its result first.
                outcome = self._land(optimizer, target, batch)
                if outcome is not None:
                    return outcome
                continue
            if given_only and planned is None and stop is None:
                stop = RequestStatus.DONE, "every given point has been run"
            if stop is not None:
                status, reason = stop
                return self._finish(status, reason, self._ran)
            if self.ctx.should_stop():
                return self._pause(
                    "the core is shutting down; the request resumes at restart", self._ran
                )
            if planned is not None:
                # A point a person, a list or a replicate chose goes before the optimizer's;
                # it stays planned until its result is stored (run again if cut off).
                point, chosen_by = dict(planned.params), planned.chosen_by
            else:
                with watch.phase("ask"):
                    if not self._queued(batch):
                        left = budget - counted - (flight is not None)  # never past the budget
                        batch = _Batch.asked(optimizer, batch.number + 1, min(per_ask, left))
                queued = self._queued(batch)
                if not queued:
                    if flight is not None:
                        outcome = self._land(optimizer, target, batch)
                        if outcome is not None:
                            return outcome
                        continue
                    return self._finish(
                        RequestStatus.DONE,
                        "every point of the search space's grid has been tried",
                        self._ran,
                    )
                # The batch's next point stays in it until its result is stored: a point
                # the lab lost is run again, and so is one cut off by a crash (_resume_batch).
                point, chosen_by = queued[0], f"optimizer:{optimizer.name}"
            with watch.phase("begin"):
                number, experiment_id = self._begin_experiment(point, batch, chosen_by, planned)
            job = _Job(number, experiment_id, point, planned, batch)
            if pipelined:
                outcome = self._overlapped(program, job, target, optimizer)
                if outcome is not None:
                    return outcome
                continue
            try:
                result = self._execute(program, point, target, include_init=not self._initialised)
            except (CampaignPaused, LabTaken, LabFailure, CampaignLinkFailed) as exc:
                outcome = self._lab_problem(exc, experiment_id, budget)
                if outcome is not None:
                    return outcome
                continue
            self._in_a_row = 0
            self._initialised = True
            self._store(number, experiment_id, point, result, optimizer, planned)
            self._measured(job)
            if self.ctx.on_timing is not None:
                self.ctx.on_timing(
                    ExperimentTiming(
                        number=number,
                        phases_ms=dict(watch.phases_ms),
                        total_ms=watch.elapsed_ms(),
                        round_trips=self._client.round_trips - round_trips,
                        calls=[(c.method, c.duration_ms) for c in self._calls],
                    )
                )

    # -- failures and bookkeeping shared by both ways of running ------------------------------
    def _lab_problem(
        self, exc: Exception, experiment_id: int, budget: int, calls: list[CallRecord] | None = None
    ) -> Outcome | None:
        """Abort the experiment ``exc`` cut short; the Outcome the request ends with now, or
        None to go on (the same point runs again)."""
        if isinstance(exc, CampaignPaused | LabTaken):
            self._abort_experiment(experiment_id, str(exc), lab_failure=True, calls=calls)
            return self._pause(str(exc), self._ran)
        if isinstance(exc, CampaignLinkFailed):
            self._abort_experiment(experiment_id, str(exc), calls=calls)  # aborted: not counted
            return self._fail_link(str(exc), self._ran)
        # LabFailure: not the chemistry's fault. The same point is run again, uncounted, after
        # the init list again (the lab may have been recovered: pumps emptied, arm homed).
        self._in_a_row += 1
        self._initialised = False
        total = self._abort_experiment(experiment_id, str(exc), lab_failure=True, calls=calls)
        if total >= LAB_FAILURES_MAX + budget // 10:
            return self._finish(
                RequestStatus.FAILED,
                f"the lab lost {total} experiments (last: {exc}); an operator should "
                "check it before this request is submitted again",
                self._ran,
            )
        if self._in_a_row >= LAB_FAILURES_IN_A_ROW:
            return self._pause(
                f"the lab refused {self._in_a_row} experiments in a row (last: {exc}); "
                "it is recovered and retried",
                self._ran,
            )
        return None

    def _queued(self, batch: _Batch) -> list[dict[str, float]]:
        """The batch's points not yet started (the one being measured has started)."""
        flight = self._flight
        if flight is None or flight.job.batch is not batch or flight.job.planned is not None:
            return batch.points
        points = list(batch.points)
        if flight.job.point in points:
            points.remove(flight.job.point)
        return points

    def _measured(self, job: _Job) -> None:
        """The job's result is stored: its point leaves its batch."""
        self._ran += 1
        if job.planned is None:
            if job.point in job.batch.points:
                job.batch.points.remove(job.point)
        else:  # a person chose a point the optimizer had asked too: it is measured now
            job.batch.points = [p for p in job.batch.points if p != job.point]

    # -- the pipelined loop (maosic/pipeline.py) ----------------------------------------------
    def _overlapped(
        self, program: Program, job: _Job, target: dict[str, Any], optimizer: Optimizer
    ) -> Outcome | None:
        """Run ``job``'s synthesis beside the measurement in flight, store that measurement's
        result, and leave ``job``'s own measurement in flight. The Outcome the request ends with
        now, or None to go on."""
        budget = self._budget
        include_init = not self._initialised
        try:
            plan = program.plan(job.point, include_init=include_init)
        except LanguageError as exc:
            outcome = self._land(optimizer, target, job.batch)
            if outcome is not None:
                self._abort_experiment(
                    job.experiment_id, "cut off: " + outcome.reason, calls=[], kind=CUT_OFF
                )
                return outcome
            error = f"cannot compile the experiment for {_fmt(job.point)}: {exc}"
            self._store(
                job.number,
                job.experiment_id,
                job.point,
                {"error": error},
                optimizer,
                job.planned,
                calls=[],
            )
            self._measured(job)
            return None
        parts = pipeline.split(plan)
        if parts is None:  # nothing to overlap in this rig: one experiment after the other
            outcome = self._land(optimizer, target, job.batch)
            if outcome is not None:
                self._abort_experiment(
                    job.experiment_id, "cut off: " + outcome.reason, calls=[], kind=CUT_OFF
                )
                return outcome
            # after a lab failure in that measurement the init list runs again first
            return self._sequential(program, job, target, optimizer, not self._initialised)
        before = self._flight
        if before is not None:
            if before.parts.may_overlap(parts.synthesis):
                before.flight.wait_sample_taken()
            else:  # the next synthesis needs a module the measurement still uses
                outcome = self._land(optimizer, target, job.batch)
                if outcome is not None:
                    self._abort_experiment(
                        job.experiment_id, "cut off: " + outcome.reason, calls=[], kind=CUT_OFF
                    )
                    return outcome
                if self._landing_failed:  # its plan lacks the init list the lab now needs
                    self._abort_experiment(
                        job.experiment_id,
                        "cut off: the experiment before it failed in the lab",
                        calls=[],
                        kind=CUT_OFF,
                    )
                    return None
        records: list[CallRecord] = []
        steps = len(parts.synthesis)
        done = [0]

        def progress(group: list[dict[str, Any]]) -> None:
            moving = [c for c in group if c is not pipeline.CLOCK]
            if moving:
                measuring = (
                    f" (experiment {self._flight.job.number} measuring)" if self._flight else ""
                )
                self._write_step(
                    f"experiment {job.number} step {done[0] + 1}/{steps}: "
                    f"{moving[0]['method']}{measuring}"
                )
                done[0] += len(moving)

        self._sink = records
        try:
            with self._watch.phase("daemon"):
                synthesis = pipeline.run_stage(
                    self._client.call_batch,
                    parts.synthesis,
                    clock_first=True,
                    before_group=progress,
                )
        except Exception as exc:  # noqa: BLE001 - mapped below, or re-raised
            failure = self._mapped(exc)
            # the sample in flight was taken before this synthesis began: its result stands
            outcome = self._land(optimizer, target, job.batch)
            if outcome is not None:
                # its own calls failed in the lab too: a lab failure, redone like the other
                lab = not isinstance(failure, CampaignLinkFailed)
                self._abort_experiment(job.experiment_id, str(failure), lab, calls=records)
                return outcome
            return self._lab_problem(failure, job.experiment_id, budget, records)
        finally:
            self._sink = self._calls
        own = dict(self._watch.phases_ms)  # this job's software time so far (not the landing's)
        outcome = self._land(optimizer, target, job.batch)
        if outcome is not None:
            self._abort_experiment(
                job.experiment_id, "cut off: " + outcome.reason, calls=records, kind=CUT_OFF
            )
            return outcome
        if self._landing_failed:
            # the measurement before it failed in the lab: this synthesis ran on a lab that may
            # have been recovered since; its point runs again, after the init list
            self._abort_experiment(
                job.experiment_id,
                "cut off: the experiment before it failed in the lab",
                calls=records,
                kind=CUT_OFF,
            )
            return None
        self._initialised = True
        start = synthesis.clocks[0] if synthesis.clocks else None
        self._fly(job, parts, records, start, own, synthesis.round_trips)
        return None

    def _sequential(
        self,
        program: Program,
        job: _Job,
        target: dict[str, Any],
        optimizer: Optimizer,
        include_init: bool,
    ) -> Outcome | None:
        try:
            result = self._execute(program, job.point, target, include_init=include_init)
        except (CampaignPaused, LabTaken, LabFailure, CampaignLinkFailed) as exc:
            return self._lab_problem(exc, job.experiment_id, self._budget)
        self._in_a_row = 0
        self._initialised = True
        self._store(job.number, job.experiment_id, job.point, result, optimizer, job.planned)
        self._measured(job)
        return None

    def _fly(
        self,
        job: _Job,
        parts: pipeline.Split,
        records: list[CallRecord],
        start: float | None,
        phases_ms: dict[str, float],
        round_trips: int,
    ) -> None:
        """Start ``job``'s measurement on the second client."""
        if self._client2 is None:
            self._client2 = self.ctx.client_factory(lambda record: self._sink2.append(record))
        client = self._client2
        self._sink2 = records

        def work(sample_taken: Callable[[], None]) -> pipeline.StageResult:
            return pipeline.run_stage(
                client.call_batch,
                parts.characterization,
                clock_last=True,
                first_alone=True,
                after_first=sample_taken,
            )

        flight = pipeline.Flight(f"measure-{self.request_id}-{job.number}", work).start()
        self._flight = _InFlight(job, parts, flight, records, start, phases_ms, round_trips)

    def _land(self, optimizer: Optimizer, target: dict[str, Any], batch: _Batch) -> Outcome | None:
        """Wait for the measurement in flight (if any) and store its result. The Outcome the
        request ends with now (its lab failed), or None to go on."""
        landing = self._flight
        self._landing_failed = False
        if landing is None:
            return None
        self._flight = None
        job = landing.job
        mark = dict(self._watch.phases_ms)
        try:
            stage = landing.flight.join()
        except Exception as exc:  # noqa: BLE001 - mapped below, or re-raised
            failure = self._mapped(exc)
            self._landing_failed = True
            if job.planned is None and job.point not in batch.points:
                batch.points.insert(0, job.point)  # asked in an earlier batch: run it again next
            return self._lab_problem(failure, job.experiment_id, self._budget, landing.records)
        spectra: dict[str, dict[str, Any]] = {}
        for call, result in stage.results:
            for kind, _, key in SPECTRUM_METHODS.get(call["method"], ()):
                if isinstance(result, dict) and key in result:
                    spectra.setdefault(kind, result)
        end = stage.clocks[-1] if stage.clocks else None
        lab_time = end - landing.start if None not in (end, landing.start) else None
        result = self._analysed(target, spectra, lab_time)
        self._in_a_row = 0
        self._store(
            job.number,
            job.experiment_id,
            job.point,
            result,
            optimizer,
            job.planned,
            calls=landing.records,
        )
        self._measured(job)
        if self.ctx.on_timing is not None:
            # its own iteration's phases plus those of its landing (analysis, tell, store...)
            phases = dict(landing.phases_ms)
            for name, ms in self._watch.phases_ms.items():
                if ms - mark.get(name, 0.0) > 0:
                    phases[name] = phases.get(name, 0.0) + ms - mark.get(name, 0.0)
            self.ctx.on_timing(
                ExperimentTiming(
                    number=job.number,
                    phases_ms=phases,
                    total_ms=sum(phases.values()),
                    round_trips=landing.round_trips + stage.round_trips,
                    calls=[(c.method, c.duration_ms) for c in landing.records],
                )
            )
        return None

    def _mapped(self, exc: BaseException) -> Exception:
        """A daemon client's exception as the campaign's own (the mapping of ``_execute``);
        anything else is re-raised."""
        if isinstance(exc, LinkConfigError):
            return CampaignLinkFailed(_link_failure(exc))
        if isinstance(exc, HardwareUnreachable | HardwareLost):
            return CampaignPaused(f"the hardware daemon went away: {exc}")
        if isinstance(exc, HardwareError):
            return self._lab_error(exc)
        raise exc

    def _analysed(
        self, target: dict[str, Any], spectra: dict[str, dict[str, Any]], lab_time: float | None
    ) -> dict[str, Any]:
        try:
            with self._watch.phase("analysis"):
                reward = compute_reward(target, spectra)
        except SpectrumError as exc:
            return {
                "error": f"the spectra could not be analysed: {exc}",
                "spectra": spectra,
                "lab_time_s": lab_time,
            }
        return {"reward": reward, "spectra": spectra, "lab_time_s": lab_time}

    def _prepare(self) -> tuple[ReactionConfig, Program, dict[str, Any], int, Optimizer]:
        with self._tx() as session:
            if self.ctx.fence is not None:
                self.ctx.fence.hold(session)
            if self.ctx.recovered:
                session.execute(insert(HARDWARE_COMMANDS), [self._recovery_audit()])
            request = session.get(Request, self.request_id)
            assert request is not None, f"request {self.request_id} vanished"
            config = load_config(request.reaction.config)
            target = dict(request.target or {}) or default_target(config)
            budget = request.budget
            # Experiments cut off by a crash: keep them, marked, and redo their points.
            session.execute(
                update(Experiment)
                .where(
                    Experiment.request_id == self.request_id,
                    Experiment.status == ExperimentStatus.RUNNING,
                )
                .values(
                    status=ExperimentStatus.ABORTED,
                    error="cut off (core restarted)",
                    failure_kind=CUT_OFF,
                    finished_at=utcnow(),
                )
            )
            state = request.optimizer_state
            reaction_id = request.reaction_id
            name, seed = request.optimizer, request.seed
            self._optimizer_name = name
            request.current_step = "checking resources"
        program = compile_config(config)
        self._steady_state = config.steady_state
        check_resources(self._client, program, config, budget)
        space = config.search_space()
        if state:
            # the options are among the state's hyperparameters: a restart keeps them
            optimizer = restore_optimizer(state)
        elif name == plans.POINTS:
            # A request that runs given points has no optimizer of its own; a random search
            # keeps the bookkeeping (what was measured) the same as every other request's.
            optimizer = make_optimizer("random", space, seed=seed)
        else:
            options = dict(configured_options(config, name))
            points, losses = self._history(reaction_id)
            if optimizer_class(name).wants_budget and "budget" not in options:
                # its schedule runs over the history it is preloaded with and this request
                options["budget"] = budget + len(points)
            optimizer = make_optimizer(name, space, seed=seed, **options)
            if points:
                optimizer.preload(points, losses)
                log.info(
                    "request %s: preloaded %d earlier experiments", self.request_id, len(points)
                )
            state = optimizer.state()
            self._with_retries(lambda session: self._update_request(session, optimizer_state=state))
        return config, program, target, budget, optimizer

    def _history(self, reaction_id: int) -> tuple[list[dict[str, float]], list[float | None]]:
        """LOAD_REACTION_HISTORY: finished experiments of the same reaction in earlier requests."""
        with self.ctx.sessions() as session:
            owner = session.scalar(select(Request.owner_id).where(Request.id == self.request_id))
            # An imported request's results are its importer's word, not this lab's: they seed
            # only the importer's own requests, so no one can steer another's search with a
            # crate of made-up numbers.
            imported = Request.stop_reason.startswith(IMPORTED_PREFIX)
            trusted = ~imported if owner is None else or_(~imported, Request.owner_id == owner)
            rows = session.execute(
                select(
                    Experiment.params,
                    Experiment.loss,
                    Experiment.reward,
                    Experiment.request_id,
                    Experiment.number,
                )
                .join(Request, Experiment.request_id == Request.id)
                .where(
                    Request.reaction_id == reaction_id,
                    Request.id != self.request_id,
                    Experiment.status == ExperimentStatus.DONE,
                    Experiment.loss.is_not(None),
                    or_(Request.stop_reason.is_(None), trusted),
                )
                .order_by(Experiment.id)
            ).all()
        seen: set[tuple] = set()
        points, losses = [], []
        for params, loss, reward, request_id, number in rows:
            if reward is not None and (
                self._history_best is None or reward > self._history_best[0]
            ):
                self._history_best = (float(reward), int(request_id), int(number))
            key = tuple(sorted(params.items()))
            if key not in seen:  # two requests may have measured the same point
                seen.add(key)
                points.append(dict(params))
                losses.append(float(loss))
        return points, losses

    def _stop_reason(
        self, budget: int, goal: float | None, patience: int | None
    ) -> tuple[tuple[RequestStatus, str] | None, int]:
        """Why the request stops now (None: it goes on) and how many experiments counted."""

        def read(session: Session) -> tuple[bool, int, list[float | None], float | None]:
            # Two columns, not the whole row: the optimizer state in it grows every experiment.
            cancel, best = session.execute(
                select(Request.cancel_requested, Request.best_reward).where(
                    Request.id == self.request_id
                )
            ).one()
            counted = (
                Experiment.request_id == self.request_id,
                Experiment.status.in_((ExperimentStatus.DONE, ExperimentStatus.FAILED)),
                # replicates run to confirm a goal are not counted against the budget
                or_(Experiment.chosen_by.is_(None), Experiment.chosen_by != plans.CONFIRM),
            )
            if not patience:  # a count will do; the rewards are needed only for patience
                n = session.scalar(select(func.count()).select_from(Experiment).where(*counted))
                return cancel, int(n or 0), [], best
            rewards = list(
                session.scalars(
                    select(Experiment.reward).where(*counted).order_by(Experiment.number)
                )
            )
            return cancel, len(rewards), rewards, best

        cancel_requested, n_counted, rewards, best_hist = self._with_retries(read)
        stop = _why_stop(budget, goal, patience, cancel_requested, n_counted, rewards, best_hist)
        return stop, n_counted

    def _next_planned(self, skip: int | None = None) -> PlannedPoint | None:
        """The request's next planned point not yet run (detached: read, not changed), other
        than ``skip`` (the one being measured).

        A plain read, not a fenced transaction: it writes nothing (the fence's touch is a
        write, and on SQLite one more write per experiment is one more moment another core
        waits), and the store that marks the point used is fenced."""
        with self.ctx.sessions() as session:
            found = [p for p in plans.pending(session, self.request_id) if p.id != skip]
            if not found:
                return None
            session.expunge(found[0])
            return found[0]

    def _confirmed(self, goal: float, confirm: int) -> tuple[RequestStatus, str] | None:
        """The goal judged on replicates (target option ``confirm``: k).

        The best experiment that reached the goal and has fewer than k replicates gets them
        planned (they run next, not counted against the budget); once an experiment and its k
        replicates are done and their mean reaches the goal, the request stops on it. A mean
        that falls short leaves the search going: that best did not reproduce."""

        def check(session: Session) -> tuple[RequestStatus, str] | None:
            if plans.pending(session, self.request_id):
                return None  # replicates (or other planned points) still to run
            rows = session.execute(
                select(Experiment.id, Experiment.number, Experiment.reward, Experiment.params)
                .where(
                    Experiment.request_id == self.request_id,
                    Experiment.status == ExperimentStatus.DONE,
                    Experiment.replicate_of.is_(None),
                    Experiment.reward >= float(goal),
                )
                .order_by(Experiment.reward.desc())
            ).all()
            for exp_id, number, reward, params in rows:
                replicates = list(
                    session.scalars(
                        select(Experiment.reward).where(
                            Experiment.replicate_of == exp_id,
                            Experiment.request_id == self.request_id,
                            Experiment.status.in_((ExperimentStatus.DONE, ExperimentStatus.FAILED)),
                        )
                    )
                )
                if len(replicates) < confirm:
                    plans.add(
                        session,
                        self.request_id,
                        [dict(params)] * (confirm - len(replicates)),
                        plans.CONFIRM,
                        replicate_of=exp_id,
                    )
                    self._update_request(
                        session,
                        current_step=(
                            f"experiment {number} reached the goal ({reward:.4g}); confirming "
                            f"it with {confirm} replicates"
                        )[:255],
                    )
                    return None
                stats = plans.replicate_stats([reward, *replicates])
                if (
                    stats["mean"] is not None
                    and stats["n"] == confirm + 1
                    and (stats["mean"] >= float(goal))
                ):
                    spread = f" ± {stats['std']:.2g}" if stats["std"] is not None else ""
                    return RequestStatus.DONE, (
                        f"target reached: experiment {number} and its {confirm} replicates "
                        f"average {stats['mean']:.4g}{spread} >= goal {goal}"
                    )
            return None

        return self._with_retries(check)

    def _resume_batch(self, optimizer: Optimizer) -> _Batch:
        """The batch in progress when this run starts.

        The checkpoint is written with each result, so the optimizer's pending points (asked,
        not yet told) are the rest of the batch of the last stored experiment: they run first,
        under that batch's number, and none is lost or asked twice. With none pending the next
        ask starts a new batch; an experiment cut off in a batch's first point is then asked
        again, and a deterministic optimizer proposes the same batch (module docstring).
        """
        counted = (
            Experiment.request_id == self.request_id,
            Experiment.status.in_((ExperimentStatus.DONE, ExperimentStatus.FAILED)),
        )
        with self.ctx.sessions() as session:
            last = session.scalar(select(func.max(Experiment.batch)).where(*counted)) or 0
            pending = optimizer.pending
            if not pending:
                return _Batch(number=last)
            stored = session.scalar(
                select(func.count())
                .select_from(Experiment)
                .where(*counted, Experiment.batch == last)
            )
        return _Batch(number=last, size=int(stored or 0) + len(pending), points=pending)

    # -- one experiment -----------------------------------------------------------------------
    def _begin_experiment(
        self,
        point: dict[str, float],
        batch: _Batch,
        chosen_by: str,
        planned: PlannedPoint | None = None,
    ) -> tuple[int, int]:
        """Write the experiment as running, with who chose it (the batch that proposed it, or
        the planned point); its number in the campaign and its row id."""

        def write(session: Session) -> tuple[int, int]:
            last = session.scalar(
                select(Experiment.number)
                .where(Experiment.request_id == self.request_id)
                .order_by(Experiment.number.desc())
                .limit(1)
            )
            number = (last or 0) + 1
            inserted = session.execute(
                insert(EXPERIMENTS).values(
                    request_id=self.request_id,
                    number=number,
                    params=point,
                    status=ExperimentStatus.RUNNING,
                    started_at=utcnow(),
                    batch=batch.number if planned is None else None,
                    chosen_by=chosen_by[:80],
                    replicate_of=planned.replicate_of if planned is not None else None,
                )
            )
            source = batch.describe() if planned is None else f"chosen by {chosen_by}"
            step = f"experiment {number} ({source}): starting at {_fmt(point)}"
            self._update_request(session, current_step=step[:255], heartbeat_at=utcnow())
            return number, inserted.inserted_primary_key[0]

        return self._with_retries(write)

    def _execute(
        self,
        program: Program,
        point: dict[str, float],
        target: dict[str, Any],
        include_init: bool = False,
    ) -> dict:
        """Run the compiled program; return spectra and reward, or the failure reason."""
        self._calls.clear()
        clock_start = None
        spectra: dict[str, dict[str, Any]] = {}
        watch = self._watch
        steady: SteadyRun | None = None
        try:
            with watch.phase("compile"):
                # The configuration's init list runs before the first experiment of each run:
                # once per request, and again after a restart or a pause (whose new lease may
                # have recovered the lab), visibly in that experiment's audit log.
                plan = program.plan(point, include_init=include_init)
                # The lab clock is read before the first and after the last step, in the same
                # round trips as those steps (a status read may follow any call; see batching).
                clock = {"method": "system.status", "params": {}}
                steady = SteadyRun.prepare(plan, self._steady_state, target, clock)
                calls = steady.calls if steady is not None else plan
                round_trips = group_calls([clock, *calls, clock])
            done = 0  # plan steps sent so far
            clocks: list[float | None] = []
            for group in round_trips:
                steps = [call for call in group if call is not clock]
                if steady is not None:  # the status read after the infusion is no plan step
                    steps = [call for call in steps if call is not steady.flow_clock]
                if steps:
                    with watch.phase("progress"):
                        self._write_step(f"step {done + 1}/{len(plan)}: {steps[0]['method']}")
                if steady is not None and group[0] is steady.reading:
                    self._steady_start(steady)
                with watch.phase("daemon"):
                    results = self._client.call_batch(
                        [(call["method"], call["params"]) for call in group]
                    )
                done += len(steps)
                for call, result in zip(group, results, strict=True):
                    if call is clock:
                        # a read batched after the first reading is older than the last one
                        later = steady.end_clock_s if steady is not None else None
                        now = result.get("clock_s")
                        clocks.append(max(now, later) if None not in (now, later) else now)
                        continue
                    if steady is not None and steady.note_result(call, result):
                        continue
                    if steady is not None and call is steady.reading:
                        # the readings until stable; the last one is the experiment's spectrum
                        result = self._steady_readings(steady, result)
                    for kind, _, key in SPECTRUM_METHODS.get(call["method"], ()):
                        if key in result:
                            spectra.setdefault(kind, result)
            clock_start, clock_end = clocks[0], clocks[-1]
        except LinkConfigError as exc:
            raise CampaignLinkFailed(_link_failure(exc)) from exc
        except (HardwareUnreachable, HardwareLost) as exc:
            raise CampaignPaused(f"the hardware daemon went away: {exc}") from exc
        except HardwareError as exc:
            if steady is not None:
                self._steady_abandon(steady)
            raise self._lab_error(exc) from exc
        except LanguageError as exc:
            return {
                "error": f"cannot compile the experiment for {_fmt(point)}: {exc}",
                "spectra": spectra,
            }
        lab_time = (clock_end - clock_start) if clock_start is not None else None
        try:
            with watch.phase("analysis"):
                reward = compute_reward(target, spectra)
        except SpectrumError as exc:
            note = steady.note() if steady is not None else None
            return {
                "error": f"the spectra could not be analysed: {exc}"
                + (f" ({note})" if note else ""),
                "spectra": spectra,
                "lab_time_s": lab_time,
            }
        result: dict[str, Any] = {"reward": reward, "spectra": spectra, "lab_time_s": lab_time}
        if steady is not None:
            steady.record(reward, result)
        return result

    @staticmethod
    def _lab_error(exc: HardwareError) -> Exception:
        """What a refused daemon call means for the campaign (raised by ``_execute``)."""
        if exc.code in (MODULE_FAULT, MODULE_OFFLINE):
            return CampaignPaused(f"the lab reports a fault: {exc}")
        if exc.code in (LEASE_TAKEN, LAB_LEASED):
            holder = exc.data.get("holder") if isinstance(exc.data, dict) else None
            return LabTaken(
                f"the lab was taken over by {holder or 'another holder'}; the request "
                "resumes when the lab is free again"
            )
        return LabFailure(f"the lab refused a command: {exc}")

    def _steady_wait(self, seconds: float) -> float | None:
        """``system.wait`` on the lab clock (recorded like every call); the clock after it."""
        with self._watch.phase("daemon"):
            return self._client.call("system.wait", seconds=round(max(seconds, 0.0), 3)).get(
                "clock_s"
            )

    def _steady_start(self, steady: SteadyRun) -> None:
        """Before the first reading: let the flow run ``start_s`` (default half the pumping)."""
        if steady.flow_start_s is None:
            return
        start = steady.options["start_s"]
        if start is None:
            start = steady.flow_s / 2.0 if steady.flow_s is not None else 0.0
        if start > 0.0:
            self._steady_wait(start)

    def _steady_readings(self, steady: SteadyRun, first: dict[str, Any]) -> dict[str, Any]:
        """Take in-situ readings every ``interval_s`` until the last ``window`` agree within
        ``tolerance_pct``, ``max_readings`` were taken or the flow ends; the last reading."""
        options = steady.options
        last = first
        now = self._steady_clock()
        steady.add(first, now)
        while not steady.stable() and steady.count < options["max_readings"]:
            if steady.flow_end_s is not None and now is not None:
                if now + options["interval_s"] > steady.flow_end_s + 1e-6:
                    steady.flow_ended = True  # a reading of a stopped flow says nothing
                    break
            self._write_step(f"steady state: reading {steady.count + 1}")
            now = self._steady_wait(options["interval_s"])
            with self._watch.phase("daemon"):
                last = self._client.call(steady.reading["method"], **steady.reading["params"])
            steady.add(last, now)
        # The pumps run the plan's volumes to the end, so the syringes are as the plan expects
        # (empty) for the next experiment's fills.
        self._steady_finish_flow(steady, now)
        steady.end_clock_s = self._steady_clock()
        return last

    def _steady_clock(self) -> float | None:
        with self._watch.phase("daemon"):
            return self._client.call("system.status").get("clock_s")

    def _steady_finish_flow(self, steady: SteadyRun, now: float | None) -> None:
        if steady.flow_end_s is None or not steady.pumps:
            return
        if now is not None and steady.flow_end_s > now:
            self._steady_wait(steady.flow_end_s - now)
        for _ in range(STEADY_IDLE_CHECKS):
            with self._watch.phase("daemon"):
                busy = self._client.call_batch(
                    [("pump.status", {"pump": pump}) for pump in steady.pumps]
                )
            if not any(state.get("busy") for state in busy):
                return
            self._steady_wait(1.0)
        raise LabFailure(
            f"the pumps {', '.join(steady.pumps)} still run {STEADY_IDLE_CHECKS} s after the "
            "end of their infusion"
        )

    def _steady_abandon(self, steady: SteadyRun) -> None:
        """After a refused call while the flow ran unwatched: stop its pumps (best effort)."""
        if steady.flow_start_s is None:
            return
        for pump in steady.pumps:
            try:
                self._client.call("pump.stop", pump=pump)
            except Exception as exc:  # noqa: BLE001 - the original failure is what is reported
                log.warning("request %s: could not stop %s: %s", self.request_id, pump, exc)

    def _store(
        self,
        number: int,
        experiment_id: int,
        point: dict[str, float],
        result: dict,
        optimizer: Optimizer,
        planned: PlannedPoint | None = None,
        calls: list[CallRecord] | None = None,
    ) -> None:
        reward = result.get("reward")
        loss = reward.loss if reward is not None else None
        uncertainty = reward.uncertainty if reward is not None else None
        # tell before the transaction so the checkpoint written with the result includes it; if
        # the commit fails the process restarts from the previous checkpoint and redoes the point.
        # A replicate of a point it already knows is not told again: one point, one observation
        # (the replicates' spread is the reproducibility panel's, not the model's).
        with self._watch.phase("tell"):
            if not optimizer.knows(point):
                optimizer.tell([point], [loss], [uncertainty] if uncertainty is not None else None)
        with self._watch.phase("checkpoint"):
            state = optimizer.state()
        # Statements, not loaded objects: loading the experiment would lazy-load its (empty)
        # collections and loading the request its optimizer state, which grows every experiment.
        values: dict[str, Any] = {"finished_at": utcnow(), "lab_time_s": result.get("lab_time_s")}
        if reward is None:
            values.update(
                status=ExperimentStatus.FAILED, error=result.get("error"), failure_kind="chemistry"
            )
        else:
            values.update(
                status=ExperimentStatus.DONE,
                error=result.get("note"),  # e.g. "not steady: ..." (steady_state readings)
                reward=reward.value,
                loss=loss,
                reward_uncertainty=uncertainty,
            )
        fits = reward.fits if reward is not None else {}
        flat = _flat_features(reward.features) if reward is not None else {}
        features = [
            {
                "experiment_id": experiment_id,
                "name": name,
                "value": _finite(value),
                "unit": _unit(name),
            }
            for name, value in flat.items()
        ]
        with self._watch.phase("audit log"):
            records = self._calls if calls is None else calls
            audit = [self._audit_values(record, experiment_id) for record in records]
        step = (
            f"experiment {number} done: reward {reward.value:.4g}"
            if reward is not None
            else f"experiment {number} failed: {result.get('error')}"
        )

        spectra = [
            (_spectrum_values(kind, data, experiment_id), fits.get(kind))
            for kind, data in result.get("spectra", {}).items()
        ]

        def write(session: Session) -> None:
            session.execute(
                update(EXPERIMENTS).where(EXPERIMENTS.c.id == experiment_id).values(**values)
            )
            peak_fits = []
            for row, fit in spectra:
                spectrum_id = session.execute(insert(SPECTRA).values(**row)).inserted_primary_key[0]
                if fit is not None:
                    peak_fits.append({**_fit_values(fit), "spectrum_id": spectrum_id})
            if peak_fits:
                session.execute(insert(PEAK_FITS), peak_fits)
            if features:
                session.execute(insert(FEATURES), features)
            if audit:
                session.execute(insert(HARDWARE_COMMANDS), audit)
            if planned is not None:  # used: with the result, so a crash before runs it again
                session.execute(
                    update(PlannedPoint)
                    .where(PlannedPoint.id == planned.id)
                    .values(experiment_id=experiment_id)
                )
            best = session.scalar(
                select(REQUESTS.c.best_reward).where(REQUESTS.c.id == self.request_id)
            )
            progress: dict[str, Any] = {
                "optimizer_state": state,
                "n_done": func.coalesce(REQUESTS.c.n_done, 0) + 1,
                "current_step": step[:255],
                "heartbeat_at": utcnow(),
            }
            if reward is not None and (best is None or reward.value > best):
                progress.update(best_reward=reward.value, best_params=point)
            self._update_request(session, **progress)

        with self._watch.phase("store"):
            self._with_retries(write)

    def _abort_experiment(
        self,
        experiment_id: int,
        reason: str,
        lab_failure: bool = False,
        calls: list[CallRecord] | None = None,
        kind: str | None = None,
    ) -> int:
        """Mark the experiment aborted (not counted); with ``lab_failure`` it is counted among
        the request's lab failures, whose new total is returned. ``calls``: its audit log
        (default: the last sequential experiment's)."""
        records = self._calls if calls is None else calls
        audit = [self._audit_values(record, experiment_id) for record in records]

        def write(session: Session) -> int:
            session.execute(
                update(EXPERIMENTS)
                .where(EXPERIMENTS.c.id == experiment_id)
                .values(
                    status=ExperimentStatus.ABORTED,
                    error=reason,
                    failure_kind="lab" if lab_failure else kind,
                    finished_at=utcnow(),
                )
            )
            if audit:
                session.execute(insert(HARDWARE_COMMANDS), audit)
            if not lab_failure:
                return 0
            self._update_request(
                session, n_lab_failures=func.coalesce(REQUESTS.c.n_lab_failures, 0) + 1
            )
            return int(
                session.scalar(
                    select(REQUESTS.c.n_lab_failures).where(REQUESTS.c.id == self.request_id)
                )
                or 0
            )

        return self._with_retries(write)

    # -- request state ------------------------------------------------------------------------
    def _finish(self, status: RequestStatus, reason: str, ran: int = 0) -> Outcome:
        def write(session: Session) -> None:
            self._hold(session)
            request = session.get(Request, self.request_id)
            request.status = status
            request.finished_at = utcnow()
            request.stop_reason = reason[:255]
            request.current_step = None
            if status == RequestStatus.FAILED:
                request.failure_reason = reason

        self._with_retries(write)
        log.info("request %s %s: %s", self.request_id, status.value, reason)
        return Outcome(status, reason, ran)

    def _finish_from_history(
        self, reward: float, request_id: int, number: int, goal: float
    ) -> Outcome:
        """OPTIMAL before the first experiment: an earlier request of the same reaction already
        measured a point that meets the goal; it becomes this request's best, linked by name."""

        def write(session: Session) -> None:
            params = session.scalar(
                select(Experiment.params).where(
                    Experiment.request_id == request_id, Experiment.number == number
                )
            )
            self._update_request(session, best_reward=reward, best_params=params)

        self._with_retries(write)
        return self._finish(
            RequestStatus.DONE,
            f"target already reached by experiment {number} of request {request_id}: reward "
            f"{reward:.4g} >= goal {goal:g}; no new experiment was run",
        )

    def _fail_link(self, reason: str, ran: int = 0) -> Outcome:
        """Fail the request over a misconfigured link, loudly: every request will fail alike
        until an operator fixes the setting the reason names."""
        log.error("request %s failed: %s", self.request_id, reason)
        return self._finish(RequestStatus.FAILED, reason, ran)

    def _pause(self, reason: str, ran: int = 0) -> Outcome:
        def write(session: Session) -> None:
            self._hold(session)
            request = session.get(Request, self.request_id)
            request.status = RequestStatus.PAUSED
            request.failure_reason = reason
            request.current_step = f"paused: {reason}"[:255]

        self._with_retries(write)
        log.warning("request %s paused: %s", self.request_id, reason)
        return Outcome(RequestStatus.PAUSED, reason, ran)

    def _write_step(self, text: str) -> None:
        # The run page polls about once a second; writing every call would double the overhead.
        now = time.monotonic()
        if now - self._step_written < 1.0:
            return
        self._step_written = now
        try:
            with self._tx() as session:
                session.execute(
                    update(REQUESTS)
                    .where(self._mine())
                    .values(current_step=text[:255], heartbeat_at=utcnow())
                )
        except OperationalError as exc:  # progress text is best effort; the result is not
            log.warning("could not write the current step: %s", exc.orig)

    def _audit_values(self, record: CallRecord, experiment_id: int | None) -> dict[str, Any]:
        """One audit log row, encrypted before the transaction opens so that it stays short."""
        result = record.result if record.error is None else {"error": record.error}
        return {
            "request_id": self.request_id,
            "experiment_id": experiment_id,
            "method": record.method,
            "ok": record.error is None,
            "error_code": record.error_code,
            "params_enc": self.ctx.cipher.encrypt_json(record.params),
            "result_enc": self.ctx.cipher.encrypt_json(result),
            "sent_at": datetime.fromtimestamp(record.sent_at, UTC).replace(tzinfo=None),
            "duration_ms": record.duration_ms,
            "actor": self.ctx.worker[:128],
            "lease_epoch": self.ctx.fence.epoch if self.ctx.fence is not None else None,
        }

    def _recovery_audit(self) -> dict[str, Any]:
        """The audit row of the lease taken for this run, whose recovery moved the lab."""
        record = CallRecord(
            method="lease.acquire",
            params={"holder": self.ctx.worker},
            result={"recovered": self.ctx.recovered},
        )
        return self._audit_values(record, None)

    def _mine(self):
        """SQL condition: the request row, and (when fenced) still under this run's claim."""
        if self.ctx.fence is None:
            return REQUESTS.c.id == self.request_id
        return self.ctx.fence.matches()

    def _hold(self, session: Session) -> None:
        if self.ctx.fence is not None:
            self.ctx.fence.hold(session)

    def _update_request(self, session: Session, **values: Any) -> None:
        session.execute(update(REQUESTS).where(REQUESTS.c.id == self.request_id).values(**values))

    def _tx(self):
        return transaction(self.ctx.sessions)

    def _with_retries(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction, under this run's claim (ClaimLost once another
        worker holds the request); retried through deadlocks and database restarts."""

        def fenced(session: Session) -> T:
            self._hold(session)
            return work(session)

        return run_transaction(
            self.ctx.sessions, fenced, attempts=DB_RETRIES, base_delay_s=0.5, retry_disconnects=True
        )


class _Heartbeat:
    """Writes the request's heartbeat while a long hardware call blocks the campaign thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        request_id: int,
        period_s: float,
        fence: Fence | None = None,
    ):
        self.sessions, self.request_id, self.period_s = sessions, request_id, period_s
        self.fence = fence
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{request_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                with transaction(self.sessions) as session:
                    mine = (
                        REQUESTS.c.id == self.request_id
                        if self.fence is None
                        else self.fence.matches()
                    )
                    session.execute(
                        update(REQUESTS)
                        .where(mine, REQUESTS.c.status == RequestStatus.RUNNING)
                        .values(heartbeat_at=utcnow())
                    )
            except OperationalError as exc:  # the database restarts; the next beat will do
                log.warning("heartbeat failed: %s", exc.orig)


def _spectrum_values(kind: str, data: dict[str, Any], experiment_id: int) -> dict[str, Any]:
    unit, key = SPECTRUM_UNITS[kind]
    values = list(data.get(key, []))
    return {
        "experiment_id": experiment_id,
        "kind": kind,
        "unit": unit,
        "n_points": len(values),
        "wavelength_nm": list(data.get("wavelength_nm", [])),
        "value": values,
        "saturated": bool(data.get("saturated", False)),
        "created_at": utcnow(),
    }


def _fit_values(fit: Any) -> dict[str, Any]:
    data = fit.to_dict() if hasattr(fit, "to_dict") else dict(fit)
    return {
        "shape": str(data.get("shape", "gaussian")),
        "n_peaks": len(data.get("peaks", [])),
        "peaks": _finite(data.get("peaks", [])),
        "baseline": _finite(
            {
                "coefficients": list(data.get("baseline", [])),
                "order": data.get("baseline_order"),
                "scattering": bool(data.get("scattering", False)),
                "span_nm": data.get("wavelength_range_nm"),
                # Absorption edges (the interband continuum) belong to the background.
                "edges": list(data.get("edges", [])),
            }
        ),
        "r2": _finite(data.get("r2")),
        "rmse": _finite(data.get("rmse")),
        "bic": _finite(data.get("bic")),
    }


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (a degenerate fit's statistics) made None: neither
    JSON nor MySQL's FLOAT can hold them, and a failed insert would lose the experiment."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _flat_features(features: dict[str, Any]) -> dict[str, float | None]:
    """One row per scalar feature; the analyzer groups them by spectrum, and a name that two
    spectra share (the exciton wavelength) is the same quantity, so the first is kept."""
    flat: dict[str, float | None] = {}
    for name, value in features.items():
        if isinstance(value, dict):
            for sub, sub_value in _flat_features(value).items():
                flat.setdefault(sub, sub_value)
        elif isinstance(value, bool | int | float) or value is None:
            flat.setdefault(name, None if value is None else float(value))
    return flat


def _unit(name: str) -> str | None:
    base = name.removesuffix("_err")
    if base in FEATURE_NAME_UNITS:
        return FEATURE_NAME_UNITS[base]
    return next((unit for suffix, unit in FEATURE_UNITS.items() if base.endswith(suffix)), None)


def _fmt(point: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in point.items())

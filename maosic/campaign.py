"""One request's closed loop (the paper's HANDLE_REQUEST), crash-safe.

Each experiment is two transactions. The first writes the experiment row as ``running`` with
its parameters; the second, after the hardware ran and the analyzer scored the spectra, writes
the result, spectra, fits, features, the encrypted audit log, the optimizer's told state and the
request's progress all at once. A crash between the two leaves a ``running`` row: on resume it
is marked ``aborted`` and, because the optimizer restarts from the state checkpointed with the
previous result and is deterministic under its seed, the next ask proposes the same point again:
the experiment is redone, nothing is stored twice and nothing is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from maosic.analysis.errors import SpectrumError
from maosic.analysis.reward import compute_reward
from maosic.db.crypto import LogCipher
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Feature,
    HardwareCommand,
    PeakFit,
    Request,
    RequestStatus,
    Spectrum,
    utcnow,
)
from maosic.db.session import run_transaction, transaction
from maosic.hardware import (
    MODULE_FAULT,
    MODULE_OFFLINE,
    CallRecord,
    HardwareClient,
    HardwareError,
    HardwareLost,
    HardwareUnreachable,
)
from maosic.language.compiler import Program, compile_config
from maosic.language.config import ReactionConfig, load_config
from maosic.language.errors import LanguageError
from maosic.optimize.base import Optimizer
from maosic.optimize.registry import make_optimizer, restore_optimizer
from maosic.resources import LabNotReady, ResourceProblem, check_resources

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
# Feature name suffix -> unit, so the features table says what each number is.
FEATURE_UNITS: dict[str, str] = {"_nm": "nm", "_mdeg": "mdeg", "_pct": "%", "_od": "OD"}
DB_RETRIES = 8  # about two minutes of backoff: long enough for a database restart


class CampaignPaused(RuntimeError):
    """The lab cannot go on now (daemon gone, module in fault); the request waits for it."""


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


DEFAULT_METRIC = "max_abs_cd_at_exciton"  # the paper's: -|CD| at the first exciton peak is the loss


def default_target(config: ReactionConfig) -> dict[str, Any]:
    """The configuration's ``metric``, a name or a whole target object, as a target."""
    if isinstance(config.metric, dict):
        return dict(config.metric)
    return {"metric": config.metric or DEFAULT_METRIC}


class Campaign:
    def __init__(self, ctx: CampaignContext, request_id: int):
        self.ctx = ctx
        self.request_id = request_id
        self._calls: list[CallRecord] = []
        self._client = ctx.client_factory(self._calls.append)
        self._step_written = 0.0

    # -- public -------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Run (or resume) the request until it is done, failed, cancelled or paused."""
        beat = _Heartbeat(self.ctx.sessions, self.request_id, self.ctx.heartbeat_s)
        beat.start()
        try:
            return self._run()
        finally:
            beat.stop()
            self._client.close()

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
        except (HardwareUnreachable, HardwareLost) as exc:
            return self._pause(f"the hardware daemon does not answer: {exc}")
        goal = target.get("goal")
        patience = target.get("patience")
        ran = 0
        while True:
            stop = self._stop_reason(budget, goal, patience)
            if stop is not None:
                status, reason = stop
                return self._finish(status, reason, ran)
            if self.ctx.should_stop():
                return self._pause("the core is shutting down; the request resumes at restart", ran)
            point = optimizer.ask(1)[0]
            number = self._begin_experiment(point)
            try:
                result = self._execute(program, point, target)
            except CampaignPaused as exc:
                self._abort_experiment(number, str(exc))
                return self._pause(str(exc), ran)
            self._store(number, point, result, optimizer)
            ran += 1

    def _prepare(self) -> tuple[ReactionConfig, Program, dict[str, Any], int, Optimizer]:
        with self._tx() as session:
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
                    finished_at=utcnow(),
                )
            )
            state = request.optimizer_state
            reaction_id = request.reaction_id
            name, seed = request.optimizer, request.seed
            request.current_step = "checking resources"
        program = compile_config(config)
        check_resources(self._client, program, config, budget)
        space = config.search_space()
        if state:
            optimizer = restore_optimizer(state)
        else:
            optimizer = make_optimizer(name, space, seed=seed)
            points, losses = self._history(reaction_id)
            if points:
                optimizer.preload(points, losses)
                log.info(
                    "request %s: preloaded %d earlier experiments", self.request_id, len(points)
                )
            with self._tx() as session:
                session.get(Request, self.request_id).optimizer_state = optimizer.state()
        return config, program, target, budget, optimizer

    def _history(self, reaction_id: int) -> tuple[list[dict[str, float]], list[float | None]]:
        """LOAD_REACTION_HISTORY: finished experiments of the same reaction in earlier requests."""
        with self.ctx.sessions() as session:
            rows = session.execute(
                select(Experiment.params, Experiment.loss)
                .join(Request, Experiment.request_id == Request.id)
                .where(
                    Request.reaction_id == reaction_id,
                    Request.id != self.request_id,
                    Experiment.status == ExperimentStatus.DONE,
                    Experiment.loss.is_not(None),
                )
                .order_by(Experiment.id)
            ).all()
        seen: set[tuple] = set()
        points, losses = [], []
        for params, loss in rows:
            key = tuple(sorted(params.items()))
            if key not in seen:  # two requests may have measured the same point
                seen.add(key)
                points.append(dict(params))
                losses.append(float(loss))
        return points, losses

    def _stop_reason(
        self, budget: int, goal: float | None, patience: int | None
    ) -> tuple[RequestStatus, str] | None:
        def read(session: Session) -> tuple[bool, list, float | None]:
            request = session.get(Request, self.request_id)
            counted = (ExperimentStatus.DONE, ExperimentStatus.FAILED)
            found = session.execute(
                select(Experiment.status, Experiment.reward)
                .where(Experiment.request_id == self.request_id, Experiment.status.in_(counted))
                .order_by(Experiment.number)
            ).all()
            return request.cancel_requested, found, request.best_reward

        cancel_requested, rows, best_hist = self._with_retries(read)
        if cancel_requested:
            return RequestStatus.CANCELLED, "cancelled by the user"
        if goal is not None and best_hist is not None and best_hist >= float(goal):
            return RequestStatus.DONE, f"target reached: reward {best_hist:.4g} >= goal {goal}"
        if len(rows) >= budget:
            return RequestStatus.DONE, f"budget of {budget} experiments used"
        if patience:
            scored = [(r, i) for i, (_, r) in enumerate(rows) if r is not None]
            if scored and len(rows) - 1 - max(scored)[1] >= int(patience):
                return RequestStatus.DONE, f"no improvement in the last {patience} experiments"
        return None

    # -- one experiment -----------------------------------------------------------------------
    def _begin_experiment(self, point: dict[str, float]) -> int:
        def write(session: Session) -> int:
            last = session.scalar(
                select(Experiment.number)
                .where(Experiment.request_id == self.request_id)
                .order_by(Experiment.number.desc())
                .limit(1)
            )
            number = (last or 0) + 1
            session.add(Experiment(request_id=self.request_id, number=number, params=point))
            request = session.get(Request, self.request_id)
            request.current_step = f"experiment {number}: starting at {_fmt(point)}"
            request.heartbeat_at = utcnow()
            return number

        return self._with_retries(write)

    def _execute(self, program: Program, point: dict[str, float], target: dict[str, Any]) -> dict:
        """Run the compiled program; return spectra and reward, or the failure reason."""
        self._calls.clear()
        clock_start = None
        spectra: dict[str, dict[str, Any]] = {}
        try:
            plan = program.plan(point)
            clock_start = self._client.call("system.status").get("clock_s")
            for step, call in enumerate(plan, start=1):
                self._write_step(f"step {step}/{len(plan)}: {call['method']}")
                result = self._client.call(call["method"], **call["params"])
                for kind, _, key in SPECTRUM_METHODS.get(call["method"], ()):
                    if key in result:
                        spectra.setdefault(kind, result)
            clock_end = self._client.call("system.status").get("clock_s")
        except (HardwareUnreachable, HardwareLost) as exc:
            raise CampaignPaused(f"the hardware daemon went away: {exc}") from exc
        except HardwareError as exc:
            if exc.code in (MODULE_FAULT, MODULE_OFFLINE):
                raise CampaignPaused(f"the lab reports a fault: {exc}") from exc
            return {"error": f"the lab refused a command: {exc}", "spectra": spectra}
        except LanguageError as exc:
            return {
                "error": f"cannot compile the experiment for {_fmt(point)}: {exc}",
                "spectra": spectra,
            }
        lab_time = (clock_end - clock_start) if clock_start is not None else None
        try:
            reward = compute_reward(target, spectra)
        except SpectrumError as exc:
            return {
                "error": f"the spectra could not be analysed: {exc}",
                "spectra": spectra,
                "lab_time_s": lab_time,
            }
        return {"reward": reward, "spectra": spectra, "lab_time_s": lab_time}

    def _store(
        self, number: int, point: dict[str, float], result: dict, optimizer: Optimizer
    ) -> None:
        reward = result.get("reward")
        loss = reward.loss if reward is not None else None
        uncertainty = reward.uncertainty if reward is not None else None
        # tell before the transaction so the checkpoint written with the result includes it; if
        # the commit fails the process restarts from the previous checkpoint and redoes the point.
        optimizer.tell([point], [loss], [uncertainty] if uncertainty is not None else None)
        state = optimizer.state()
        calls = list(self._calls)

        def write(session: Session) -> None:
            exp = session.scalars(
                select(Experiment).where(
                    Experiment.request_id == self.request_id, Experiment.number == number
                )
            ).one()
            exp.finished_at = utcnow()
            exp.lab_time_s = result.get("lab_time_s")
            if reward is None:
                exp.status = ExperimentStatus.FAILED
                exp.error = result.get("error")
            else:
                exp.status = ExperimentStatus.DONE
                exp.reward, exp.loss, exp.reward_uncertainty = reward.value, loss, uncertainty
            fits = reward.fits if reward is not None else {}
            for kind, data in result.get("spectra", {}).items():
                spectrum = _spectrum_row(kind, data)
                exp.spectra.append(spectrum)
                fit = fits.get(kind)
                if fit is not None:
                    spectrum.fits.append(_fit_row(fit))
            if reward is not None:
                for name, value in _flat_features(reward.features).items():
                    exp.features.append(Feature(name=name, value=value, unit=_unit(name)))
            for record in calls:
                session.add(self._audit_row(record, exp.id))
            request = session.get(Request, self.request_id)
            request.optimizer_state = state
            request.n_done = (request.n_done or 0) + 1
            if reward is not None and (
                request.best_reward is None or reward.value > request.best_reward
            ):
                request.best_reward, request.best_params = reward.value, point
            request.current_step = (
                f"experiment {number} done: reward {reward.value:.4g}"
                if reward is not None
                else f"experiment {number} failed: {result.get('error')}"
            )
            request.heartbeat_at = utcnow()

        self._with_retries(write)

    def _abort_experiment(self, number: int, reason: str) -> None:
        calls = list(self._calls)

        def write(session: Session) -> None:
            exp = session.scalars(
                select(Experiment).where(
                    Experiment.request_id == self.request_id, Experiment.number == number
                )
            ).one()
            exp.status, exp.error, exp.finished_at = ExperimentStatus.ABORTED, reason, utcnow()
            for record in calls:
                session.add(self._audit_row(record, exp.id))

        self._with_retries(write)

    # -- request state ------------------------------------------------------------------------
    def _finish(self, status: RequestStatus, reason: str, ran: int = 0) -> Outcome:
        def write(session: Session) -> None:
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

    def _pause(self, reason: str, ran: int = 0) -> Outcome:
        def write(session: Session) -> None:
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
                    update(Request)
                    .where(Request.id == self.request_id)
                    .values(current_step=text[:255], heartbeat_at=utcnow())
                )
        except OperationalError as exc:  # progress text is best effort; the result is not
            log.warning("could not write the current step: %s", exc.orig)

    def _audit_row(self, record: CallRecord, experiment_id: int | None) -> HardwareCommand:
        result = record.result if record.error is None else {"error": record.error}
        return HardwareCommand(
            request_id=self.request_id,
            experiment_id=experiment_id,
            method=record.method,
            ok=record.error is None,
            error_code=record.error_code,
            params_enc=self.ctx.cipher.encrypt_json(record.params),
            result_enc=self.ctx.cipher.encrypt_json(result),
            duration_ms=record.duration_ms,
        )

    def _tx(self):
        return transaction(self.ctx.sessions)

    def _with_retries(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; retried through deadlocks and database restarts."""
        return run_transaction(
            self.ctx.sessions, work, attempts=DB_RETRIES, base_delay_s=0.5, retry_disconnects=True
        )


class _Heartbeat:
    """Writes the request's heartbeat while a long hardware call blocks the campaign thread."""

    def __init__(self, sessions: sessionmaker[Session], request_id: int, period_s: float):
        self.sessions, self.request_id, self.period_s = sessions, request_id, period_s
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
                    session.execute(
                        update(Request)
                        .where(
                            Request.id == self.request_id, Request.status == RequestStatus.RUNNING
                        )
                        .values(heartbeat_at=utcnow())
                    )
            except OperationalError as exc:  # the database restarts; the next beat will do
                log.warning("heartbeat failed: %s", exc.orig)


def _spectrum_row(kind: str, data: dict[str, Any]) -> Spectrum:
    unit, key = SPECTRUM_UNITS[kind]
    values = list(data.get(key, []))
    return Spectrum(
        kind=kind,
        unit=unit,
        n_points=len(values),
        wavelength_nm=list(data.get("wavelength_nm", [])),
        value=values,
        saturated=bool(data.get("saturated", False)),
    )


def _fit_row(fit: Any) -> PeakFit:
    data = fit.to_dict() if hasattr(fit, "to_dict") else dict(fit)
    return PeakFit(
        shape=str(data.get("shape", "gaussian")),
        n_peaks=len(data.get("peaks", [])),
        peaks=data.get("peaks", []),
        baseline={
            "coefficients": list(data.get("baseline", [])),
            "order": data.get("baseline_order"),
            "scattering": bool(data.get("scattering", False)),
            "span_nm": data.get("wavelength_range_nm"),
        },
        r2=data.get("r2"),
        rmse=data.get("rmse"),
        bic=data.get("bic"),
    )


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
    return next((unit for suffix, unit in FEATURE_UNITS.items() if base.endswith(suffix)), None)


def _fmt(point: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in point.items())

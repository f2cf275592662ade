"""What the core's request handler does, independent of the wire (see :mod:`maosic.rpc`).

The web site and the terminal client reach these through JSON-RPC on port 9999; tests call
them directly too. Every method takes and returns JSON-able values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maosic import plans
from maosic.analysis.errors import SpectrumError
from maosic.analysis.reward import check_target
from maosic.campaign import batch_size, configured_options, default_target
from maosic.db.models import (
    ACTIVE_STATUSES,
    Experiment,
    ExperimentStatus,
    Lab,
    Request,
    User,
)
from maosic.db.repository import get_or_create_reaction
from maosic.db.session import run_transaction
from maosic.labs import NoLabFits, route
from maosic.language.compiler import Program, compile_config, compile_formula
from maosic.language.config import ReactionConfig, formula_config, load_config
from maosic.language.errors import LanguageError
from maosic.language.header import formula_space
from maosic.optimize.registry import (
    DEFAULT_OPTIMIZER,
    OPTIMIZERS,
    check_options,
    optimizer_options,
)
from maosic.optimize.space import Space, as_space
from maosic.queue import (
    NO_ESTIMATE,
    Estimate,
    QueueError,
    cancel,
    enqueue,
    estimates,
    position,
    waiting,
)
from maosic.resources import ResourceProblem, check_fit
from maosic.rpc_auth import INSTALLATION, Caller

MAX_BUDGET = 10_000
MAX_SEED = 2**31 - 1  # requests.seed is a 32-bit INTEGER column in MySQL
MAX_ID = 2**63 - 1  # ids are BIGINT-safe; larger ones overflow SQLite's and MySQL's integers
MAX_LIST = 1000  # rows one request.list call returns at most
MAX_NAME = 128  # reactions.name is VARCHAR(128)
MAX_FORMULA = 20_000  # characters; a formula is a line or two


class ServiceError(ValueError):
    """Bad input to the core; ``field`` names the offending parameter, ``detail`` adds data."""

    def __init__(self, field: str, message: str, detail: dict[str, Any] | None = None):
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.detail = field, message, detail or {}


class NotFound(LookupError):
    pass


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


class CoreService:
    """``describe_lab(url)``: the lab's ``system.describe`` (None when it does not answer);
    with it a request is checked against the lab it is routed to before it is queued."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        describe_lab: Callable[[str], dict[str, Any] | None] | None = None,
    ):
        self.sessions = sessions
        self.describe_lab = describe_lab

    # -- request.submit -----------------------------------------------------------------------
    def submit(
        self,
        caller: Caller,
        config: dict | str | None = None,
        formula: str | None = None,
        space: dict | None = None,
        target: dict | None = None,
        budget: int | None = None,
        optimizer: str | None = None,
        seed: int = 0,
        name: str | None = None,
        points: list | None = None,
        design: dict | None = None,
    ) -> dict[str, Any]:
        """Accept a request for ``caller``'s account: a configuration (a JSON object or JSON
        text, never a file name), or a formula plus its search space ``space``
        (``{"T": {"bound": [90, 180], "dx": 0.5}, ...}``). Returns id, FIFO seq and position.

        ``points`` (a list of ``{name: value}``) or ``design`` (``{"kind": "full_factorial" |
        "one_factor_at_a_time", "levels": L}``) make it a request that runs exactly those
        points, in order, with no optimizer (maosic/plans.py); its budget is their number."""
        _check_int("seed", seed, 0, MAX_SEED)
        if name is not None and len(name) > MAX_NAME:
            raise ServiceError("name", f"at most {MAX_NAME} characters, got {len(name)}")
        if formula is not None and len(formula) > MAX_FORMULA:
            raise ServiceError("formula", f"at most {MAX_FORMULA} characters, got {len(formula)}")
        config_dict = self._config_from(config, formula, space, name)
        try:
            parsed = load_config(config_dict)
            if name and config is not None:
                parsed.name = name  # the request name the user typed wins over the file's
            program = compile_config(parsed)
            reagents = set(program.reagent_volumes(parsed.defaults()))
        except LanguageError as exc:
            raise ServiceError(
                "config" if config is not None else "formula",
                str(exc),
                {"line": exc.line, "column": exc.column, "message": exc.message},
            ) from exc
        given = self._given_points(parsed, points, design, caller)
        optimizer = plans.POINTS if given else _choose_optimizer(optimizer, parsed)
        try:
            # Checked whole now: a target that cannot score an experiment must not reach the
            # lab (it would fail only after the first experiment ran).
            target = check_target(target if target is not None else default_target(parsed))
        except SpectrumError as exc:
            raise ServiceError("target", str(exc)) from exc
        budget = budget if budget is not None else parsed.max_expts or 0
        if given:
            budget = len(given[0])  # a list's budget is its length
        _check_int("budget", budget, 1, MAX_BUDGET, "experiments")
        self._check_lab(program, parsed, budget, reagents)

        def write(session: Session) -> dict[str, Any]:
            user = session.get(User, caller.user_id) if caller.user_id is not None else None
            reaction, _ = get_or_create_reaction(
                session, parsed.to_dict(), formula=formula, owner_id=user.id if user else None
            )
            try:
                lab_id = route(session, program.modules_used(), reagents)
            except NoLabFits as exc:
                raise ServiceError("config", str(exc)) from exc
            request = enqueue(
                session, reaction, target, budget, optimizer, int(seed), user, lab_id=lab_id
            )
            if given:
                plans.add(session, request.id, given[0], given[1])
            return {
                "id": request.id,
                "seq": request.seq,
                "position": position(session, request),
                "status": request.status.value,
                "budget": budget,
                "optimizer": optimizer,
                "lab": request.lab.name if request.lab else None,
            }

        # Deadlocks (MySQL) and a busy writer (SQLite) roll back; the whole submission reruns.
        return run_transaction(self.sessions, write)

    @staticmethod
    def _given_points(
        parsed: ReactionConfig, points: Any, design: Any, caller: Caller
    ) -> tuple[list[dict[str, float]], str] | None:
        """The points a list or design request runs, and who chose them; None for neither."""
        if points is None and design is None:
            return None
        if points is not None and design is not None:
            raise ServiceError("points", "give either a list of points or a design, not both")
        space = parsed.search_space()
        try:
            if design is not None:
                kind = design.get("kind") if isinstance(design, dict) else None
                return plans.design(space, design), f"design:{kind}"
            return plans.check_points(space, points), f"user:{caller.username or 'installation'}"
        except plans.PlanError as exc:
            raise ServiceError("design" if design is not None else "points", str(exc)) from exc

    @staticmethod
    def _config_from(
        config: dict | str | None, formula: str | None, space: dict | None, name: str | None
    ) -> dict | str:
        if config is not None and formula is not None:
            raise ServiceError("formula", "give either a configuration or a formula, not both")
        if config is not None:
            if not isinstance(config, dict | str):
                raise ServiceError("config", "must be a JSON object or JSON text")
            return config
        if not formula:
            raise ServiceError("config", "give a reaction configuration or a formula")
        if space is not None and not isinstance(space, dict):
            raise ServiceError("space", "must be an object {NAME: {bound, dx} or {fixed}}")
        try:
            # The formula's own "# vary"/"# fix" lines, then what the caller gave on top.
            space = {**formula_space(formula), **(space or {})}
        except LanguageError as exc:
            where = {"line": exc.line, "column": exc.column, "message": exc.message}
            raise ServiceError("formula", str(exc), where) from exc
        if not any("bound" in spec for spec in space.values() if isinstance(spec, dict)):
            try:  # a broken formula is said first: the space is the smaller problem
                compile_formula(formula)
            except LanguageError as exc:
                where = {"line": exc.line, "column": exc.column, "message": exc.message}
                raise ServiceError("formula", str(exc), where) from exc
            raise ServiceError(
                "space",
                "a formula needs its search space: give it (e.g. "
                '{"T": {"bound": [90, 180], "dx": 0.5}}) or write it in the formula\'s own '
                "lines (# vary T from 90 to 180 step 0.5)",
            )
        for var, spec in space.items():
            fixed = isinstance(spec, dict) and set(spec) == {"fixed"}
            if not fixed and (not isinstance(spec, dict) or not _is_number_pair(spec.get("bound"))):
                raise ServiceError("space", f"variable {var!r} needs a 'bound' [lo, hi] of numbers")
        return formula_config(formula, space, name)

    def _check_lab(
        self, program: Program, parsed: ReactionConfig, budget: int, reagents: set[str]
    ) -> None:
        """Refuse now what the lab the request would go to cannot run (modules, stock for the
        whole budget, limits over the space), rather than fail it after it waited its turn.
        A lab that does not answer is not held against the request: it is checked at start."""
        if self.describe_lab is None:
            return
        with self.sessions() as session:
            try:
                lab_id = route(session, program.modules_used(), reagents)
            except NoLabFits:
                return  # the write below says so, with the same message
            lab = session.get(Lab, lab_id) if lab_id is not None else None
            url = lab.url if lab is not None else None
        described = self.describe_lab(url) if url else None
        if described is None:
            return
        try:
            check_fit(described, program, parsed, budget)
        except ResourceProblem as exc:
            raise ServiceError(exc.field, str(exc)) from exc

    # -- request.status / cancel / list ------------------------------------------------------
    def status(self, caller: Caller, id: int, experiments: bool = False) -> dict[str, Any]:
        """A request of ``caller``'s (any request for staff); others' are "not found"."""
        with self.sessions() as session:
            request = self._get(session, id, caller)
            return self._describe(session, request, experiments)

    def cancel(self, caller: Caller, id: int) -> dict[str, Any]:
        def write(session: Session) -> dict[str, Any]:
            request = self._get(session, id, caller)
            try:
                cancel(session, request)
            except QueueError as exc:
                raise ServiceError("id", str(exc)) from exc
            return self._describe(session, request, False)

        return run_transaction(self.sessions, write)

    def queue_list(self, caller: Caller = INSTALLATION) -> list[dict[str, Any]]:
        """Every active request in FIFO order (everyone waits in one queue); whose they are is
        shown only to staff and to their owners."""
        with self.sessions() as session:
            rows = waiting(session)
            times = estimates(session)  # once for the whole queue: each waits for those ahead
            out = []
            for req in rows:
                info = self._describe(session, req, False, times)
                if not caller.owns(req.owner_id):
                    info["owner"] = None
                out.append(info)
            return out

    def request_list(
        self, caller: Caller, mine: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Recent requests, newest first: ``caller``'s own, or everyone's for staff unless
        ``mine``."""
        _check_int("limit", limit, 1, MAX_LIST, "rows")
        with self.sessions() as session:
            query = select(Request).order_by(Request.seq.desc()).limit(limit)
            if mine or not caller.staff:
                if caller.user_id is None:
                    raise ServiceError("mine", "the installation token acts for no account")
                query = query.where(Request.owner_id == caller.user_id)
            found = list(session.scalars(query))
            active = any(r.status in ACTIVE_STATUSES for r in found)
            times = estimates(session) if active else {}
            return [self._describe(session, r, False, times) for r in found]

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _get(session: Session, id: Any, caller: Caller) -> Request:
        _check_int("id", id, 1, MAX_ID)
        request = session.get(Request, id)
        # Another user's request is "not found" as well: its existence is not theirs to know.
        if request is None or not caller.owns(request.owner_id):
            raise NotFound(f"no request {id}")
        return request

    def _describe(
        self,
        session: Session,
        request: Request,
        experiments: bool,
        times: dict[int, Estimate] | None = None,
    ) -> dict[str, Any]:
        """``times``: the queue's estimates (maosic.queue.estimates) when the caller has them."""
        by_status = dict(
            session.execute(
                select(Experiment.status, func.count())
                .where(Experiment.request_id == request.id)
                .group_by(Experiment.status)
            ).all()
        )
        counted = by_status.get(ExperimentStatus.DONE, 0) + by_status.get(
            ExperimentStatus.FAILED, 0
        )
        # Time left on the wall clock, the wait behind the requests ahead included; which
        # clock and whether measured or assumed say the eta_ fields (Estimate.fields).
        timing: dict[str, Any] = dict(NO_ESTIMATE)
        if request.status in ACTIVE_STATUSES:
            if times is None:
                times = estimates(session)
            if request.id in times:
                timing = times[request.id].fields()
        info: dict[str, Any] = {
            "id": request.id,
            "seq": request.seq,
            "status": request.status.value,
            "position": position(session, request),
            "owner": request.owner.username if request.owner else None,
            "reaction": request.reaction.name,
            "reaction_id": request.reaction_id,
            "lab": request.lab.name if request.lab else None,
            "target": request.target,
            "optimizer": request.optimizer,
            # points per optimizer call: the configuration's nreq, 0 resolved to the optimizer's
            "batch_size": batch_size(
                (request.reaction.config or {}).get("nreq"), request.optimizer
            ),
            "budget": request.budget,
            "n_done": int(counted or 0),
            # Failures that count against the budget (no usable spectrum: the chemistry) and
            # experiments the lab lost (refused command, lost lease), redone without counting.
            "n_chemistry_failures": int(by_status.get(ExperimentStatus.FAILED, 0)),
            "n_lab_failures": int(request.n_lab_failures or 0),
            "best_reward": request.best_reward,
            "best_params": request.best_params,
            "current_step": request.current_step,
            **timing,
            "failure_reason": request.failure_reason,
            "stop_reason": request.stop_reason,
            "created_at": _iso(request.created_at),
            "started_at": _iso(request.started_at),
            "finished_at": _iso(request.finished_at),
        }
        if experiments:
            info["experiments"] = [
                {
                    "number": e.number,
                    "params": e.params,
                    "status": e.status.value,
                    "batch": e.batch,  # which optimizer call proposed it (1, 2, ...)
                    "chosen_by": e.chosen_by,  # optimizer:NAME, user:NAME, design:KIND, confirm
                    "replicate_of": e.replicate_of,  # the experiment (row id) it repeats
                    "reward": e.reward,
                    "error": e.error,
                    "failure_kind": e.failure_kind,
                    "started_at": _iso(e.started_at),
                    "finished_at": _iso(e.finished_at),
                }
                for e in request.experiments
            ]
        return info


def _choose_optimizer(requested: Any, parsed: ReactionConfig) -> str:
    """The name of the optimizer the request runs, its configured options checked.

    A name given at submission replaces the configuration's. The configuration's options go
    with the configuration's optimizer (:func:`maosic.campaign.configured_options`), so another
    optimizer named at submission runs with its defaults.
    """
    if isinstance(requested, dict):  # {"name": ...}, the configuration's form, without options
        extra = sorted(str(k) for k in requested if k != "name")
        if extra:
            raise ServiceError(
                "optimizer",
                f"options ({', '.join(extra)}) belong in the reaction configuration's "
                "'optimizer' object; a submission names the optimizer only",
            )
        requested = requested.get("name")
    name = requested or parsed.optimizer_name or DEFAULT_OPTIMIZER
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ServiceError(
            "optimizer", f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    try:
        # Refused now, not when the request's turn comes: the campaign builds the optimizer
        # with these options on this space only then.
        check_options(name, configured_options(parsed, name), _search_space(parsed))
    except ValueError as exc:
        raise ServiceError("optimizer", str(exc), {"options": optimizer_options(name)}) from exc
    return name


def _search_space(parsed: ReactionConfig) -> Space | None:
    """The optimizer's space, or None when there is none to build: that is the configuration's
    fault, not the optimizer's, and the campaign reports it as such."""
    try:
        return as_space(parsed.search_space())
    except (TypeError, ValueError):
        return None


def _is_number_pair(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def _check_int(field: str, value: Any, low: int, high: int, unit: str = "") -> None:
    """``value`` must be an integer in [low, high]: checked before it reaches SQL, where a huge
    one overflows (SQLite) or comes back as an error quoting the statement (MySQL)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError(field, f"must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        shown = str(value) if len(str(value)) <= 24 else f"a {len(str(value))}-digit number"
        unit = f" {unit}" if unit else ""
        raise ServiceError(field, f"must be between {low} and {high}{unit}, got {shown}")

"""The core's JSON-RPC methods for experiments people choose (maosic/plans.py).

``request.repeat``   run an experiment (or a request's best) again n times, interleaved with
                     random conditions, as a new request of the same reaction;
``request.propose``  a person's next points for an active request, run before the optimizer's;
``request.suggest``  the point the request's optimizer would run next, beside a person's;
``request.plan``     a request's planned points not yet run;
``request.replicates`` replicate groups touching a request, with mean, deviation and CV.

The caller's rights are CoreService's: their own requests (staff: any); another user's
request is "not found".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from maosic import plans
from maosic.campaign import configured_options
from maosic.db.models import (
    ACTIVE_STATUSES,
    Experiment,
    ExperimentStatus,
    Reaction,
    Request,
    User,
)
from maosic.db.session import run_transaction
from maosic.labs import NoLabFits, route
from maosic.language.compiler import compile_config
from maosic.language.config import load_config
from maosic.optimize.registry import make_optimizer, restore_optimizer
from maosic.queue import enqueue, position
from maosic.rpc_auth import Caller
from maosic.service import CoreService, ServiceError, _check_int

MAX_REPEATS = 20  # replicates in one repeat: the papers ran 3-5
SUGGESTIONS_KEPT = 256  # cached next asks (a few per active request)
MAX_PROPOSED = 50  # a person's points waiting in one request's plan
# Target keys that are stopping rules of the original request, not of its replicates.
STOPPING_KEYS = ("goal", "patience", "confirm")


class PlanService:
    """Methods on top of :class:`CoreService` (its sessions, its access rule)."""

    def __init__(self, core: CoreService) -> None:
        self.core = core
        # The optimizer's next ask by (request, checkpoint size): every open run page asks
        # after each experiment, and a model fit per viewer would load the core for nothing.
        self._suggested: OrderedDict[tuple[int, int, int], dict[str, Any] | None] = OrderedDict()
        self._lock = threading.Lock()

    # -- request.repeat ----------------------------------------------------------------------
    def repeat(
        self,
        caller: Caller,
        id: int,
        n: int = 3,
        number: int | None = None,
        between: bool = True,
        seed: int = 0,
    ) -> dict[str, Any]:
        """A new request that runs experiment ``number`` of request ``id`` (its best when
        ``number`` is None) ``n`` times, a random condition between each two when ``between``.
        Each replicate records the experiment it repeats (experiments.replicate_of)."""
        _check_int("n", n, 1, MAX_REPEATS, "replicates")
        _check_int("seed", seed, 0, 2**31 - 1)
        if not isinstance(between, bool):
            raise ServiceError("between", "must be true or false")
        with self.core.sessions() as session:
            request = self.core._get(session, id, caller)
            original = self._original(session, request, number)
            config = load_config(request.reaction.config)
            original_id, params = original.id, dict(original.params)
            label = f"replicate of request {request.id} experiment {original.number}"
            target = {k: v for k, v in (request.target or {}).items() if k not in STOPPING_KEYS}
            reaction_id = request.reaction_id
        space = config.search_space()
        try:
            point = plans.check_point(space, params, f"experiment {number or 'best'}")
        except plans.PlanError as exc:
            raise ServiceError("number", str(exc)) from exc
        runs = plans.interleaved_replicates(space, point, n, seed=seed, between=between)
        program = compile_config(config)
        reagents = set(program.reagent_volumes(config.defaults()))
        self.core._check_lab(program, config, len(runs), reagents)

        def write(session: Session) -> dict[str, Any]:
            user = session.get(User, caller.user_id) if caller.user_id is not None else None
            reaction = session.get(Reaction, reaction_id)
            try:
                lab_id = route(session, program.modules_used(), reagents)
            except NoLabFits as exc:
                raise ServiceError("id", str(exc)) from exc
            new = enqueue(
                session, reaction, target, len(runs), plans.POINTS, seed, user, lab_id=lab_id
            )
            for params, is_replicate in runs:
                plans.add(
                    session,
                    new.id,
                    [params],
                    label if is_replicate else plans.INTERLEAVED,
                    replicate_of=original_id if is_replicate else None,
                )
            return {
                "id": new.id,
                "seq": new.seq,
                "position": position(session, new),
                "budget": len(runs),
                "replicates": n,
                "repeats": {"request": id, "experiment": original_id, "params": point},
            }

        return run_transaction(self.core.sessions, write)

    @staticmethod
    def _original(session: Session, request: Request, number: int | None) -> Experiment:
        query = select(Experiment).where(
            Experiment.request_id == request.id, Experiment.status == ExperimentStatus.DONE
        )
        if number is None:
            found = session.scalars(
                query.where(Experiment.reward.is_not(None))
                .order_by(Experiment.reward.desc())
                .limit(1)
            ).first()
            if found is None:
                raise ServiceError("number", f"request {request.id} has no finished experiment")
            return found
        _check_int("number", number, 1, 10**6)
        found = session.scalars(query.where(Experiment.number == number)).first()
        if found is None:
            raise ServiceError(
                "number", f"request {request.id} has no finished experiment {number}"
            )
        return found

    # -- request.propose / suggest / plan ----------------------------------------------------
    def propose(self, caller: Caller, id: int, points: Any) -> dict[str, Any]:
        """Queue a person's points in an active request; they run next, before the optimizer
        is asked again, and each experiment records who chose it."""

        def write(session: Session) -> dict[str, Any]:
            request = self.core._get(session, id, caller)
            if request.status not in ACTIVE_STATUSES:
                raise ServiceError("id", f"request {id} is {request.status.value}: nothing to add")
            space = load_config(request.reaction.config).search_space()
            try:
                clean = plans.check_points(space, points)
            except plans.PlanError as exc:
                raise ServiceError("points", str(exc)) from exc
            waiting = len(plans.pending(session, request.id))
            if waiting + len(clean) > MAX_PROPOSED:
                raise ServiceError(
                    "points",
                    f"at most {MAX_PROPOSED} points may wait in a request; {waiting} already do",
                )
            plans.add(session, request.id, clean, f"user:{caller.username or 'installation'}")
            return {
                "id": request.id,
                "plan": [plans.describe(p) for p in plans.pending(session, request.id)],
            }

        return run_transaction(self.core.sessions, write)

    def suggest(self, caller: Caller, id: int) -> dict[str, Any]:
        """The point this request runs next if nobody proposes one: a planned point, else the
        optimizer's pending or next ask (computed on a copy of its checkpoint; nothing is
        stored, so asking does not change what the request does)."""
        with self.core.sessions() as session:
            request = self.core._get(session, id, caller)
            if request.status not in ACTIVE_STATUSES:
                return {"id": id, "point": None, "chosen_by": None, "status": request.status.value}
            waiting = plans.pending(session, request.id)
            if waiting:
                return {"id": id, "point": waiting[0].params, "chosen_by": waiting[0].chosen_by,
                        "status": request.status.value}  # fmt: skip
            state, name = request.optimizer_state, request.optimizer
            config = request.reaction.config
            status = request.status.value
        if name == plans.POINTS:
            return {"id": id, "point": None, "chosen_by": None, "status": status}
        key = (
            id,
            len((state or {}).get("observations") or []),
            len((state or {}).get("pending") or []),
        )
        with self._lock:
            if key in self._suggested:
                return {**(self._suggested[key] or {}), "status": status}
        if state:
            optimizer = restore_optimizer(state)
        else:  # not started: the first ask of a fresh optimizer (history is preloaded at start)
            parsed = load_config(config)
            optimizer = make_optimizer(
                name, parsed.search_space(), **configured_options(parsed, name)
            )
        asked = optimizer.pending or optimizer.ask(1)
        reply = {
            "id": id,
            "point": asked[0] if asked else None,
            "chosen_by": f"optimizer:{optimizer.name}",
        }
        with self._lock:
            self._suggested[key] = reply
            while len(self._suggested) > SUGGESTIONS_KEPT:
                self._suggested.popitem(last=False)
        return {**reply, "status": status}

    def plan(self, caller: Caller, id: int) -> list[dict[str, Any]]:
        with self.core.sessions() as session:
            request = self.core._get(session, id, caller)
            return [plans.describe(p) for p in plans.pending(session, request.id)]

    # -- request.replicates --------------------------------------------------------------------
    def replicates(self, caller: Caller, id: int) -> list[dict[str, Any]]:
        with self.core.sessions() as session:
            request = self.core._get(session, id, caller)
            return replicate_groups(session, request.id)


def replicate_groups(session: Session, request_id: int) -> list[dict[str, Any]]:
    """Every group of replicates that touches a request: an experiment of it repeated (here or
    in a replicates request), or replicates it ran of another's. Each group: the original,
    its replicates, and the mean, sample standard deviation and CV of all their rewards."""
    own_ids = select(Experiment.id).where(Experiment.request_id == request_id)
    replicas = list(
        session.scalars(
            select(Experiment)
            .where(
                Experiment.replicate_of.is_not(None),
                or_(Experiment.request_id == request_id, Experiment.replicate_of.in_(own_ids)),
                Experiment.status.in_((ExperimentStatus.DONE, ExperimentStatus.FAILED)),
            )
            .order_by(Experiment.id)
        )
    )
    groups: dict[int, list[Experiment]] = {}
    for e in replicas:
        groups.setdefault(int(e.replicate_of), []).append(e)  # type: ignore[arg-type]
    out = []
    for original_id, members in groups.items():
        original = session.get(Experiment, original_id)
        if original is None:
            continue
        runs = [original, *members]
        out.append(
            {
                "original": _row(original),
                "replicates": [_row(e) for e in members],
                "params": original.params,
                **plans.replicate_stats([e.reward for e in runs]),
                "n_failed": sum(e.status == ExperimentStatus.FAILED for e in runs),
            }
        )
    return out


def _row(e: Experiment) -> dict[str, Any]:
    return {
        "id": e.id,
        "request_id": e.request_id,
        "number": e.number,
        "reward": e.reward,
        "status": e.status.value,
        "chosen_by": e.chosen_by,
    }

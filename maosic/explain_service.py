"""What drove a request's result, for the run page, the terminal and ``request.explain``.

:mod:`maosic.explain` fits a surrogate on the request's finished experiments and explains it
(SHAP, held-out R², a response surface, a verdict on whether the data can carry it). That takes
seconds (five Gaussian-process fits and the SHAP values), so each explanation is computed once
per set of results and kept in memory, keyed by the request and its last finished experiment:
a page polled every few seconds costs nothing until a new result arrives. Computing is
serialised (one CPU-bound explanation at a time; a second caller waits for the first's result).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maosic.db.models import Experiment, ExperimentStatus, Request
from maosic.explain import ExplainError, explain, request_data

CACHE_SIZE = 64  # explanations kept (a few kB each)

_cache: OrderedDict[tuple[int, int, int], dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def explanation(session: Session, request: Request) -> dict[str, Any]:
    """The request's explanation as plain data: ``available`` False with the ``reason`` when
    its experiments cannot carry one (too few, one point), else :class:`Explanation` fields
    (without the per-experiment SHAP values, which no page shows)."""
    count, last = session.execute(
        select(func.count(Experiment.id), func.max(Experiment.id)).where(
            Experiment.request_id == request.id,
            Experiment.status == ExperimentStatus.DONE,
            Experiment.reward.is_not(None),
        )
    ).one()
    key = (request.id, int(count or 0), int(last or 0))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        data = request_data(session, request.id)
        try:
            found = explain(
                data["x"], data["y"], data["names"], data["lower"], data["upper"],
                seed=int(request.seed or 0),
            )  # fmt: skip
        except ExplainError as exc:
            out: dict[str, Any] = {"available": False, "reason": str(exc), "n": len(data["y"])}
        else:
            out = {"available": True, **found.as_dict()}
            out.pop("shap_values", None)
        _cache[key] = out
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return out

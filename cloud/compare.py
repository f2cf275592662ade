"""Compare requests: their best-so-far reward curves on one plot (issue 21).

The reviewers' question (is the optimizer better than random, or than a person?) answered on
the lab's own data: ``/compare?ids=3,7,9`` overlays the best reward against the experiment number
of up to :data:`MAX_COMPARED` requests the account may see, and tabulates how many experiments
each needed to come within 5 % of the best reward any of them reached. Rewards of different
metrics (or of one metric with different settings) are different quantities: those requests are
tabulated but never overlaid.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import login_required
from jinja2.utils import htmlsafe_json_dumps
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from cloud import rundata
from cloud.context import db
from maosic.db.models import Experiment, Request

bp = Blueprint("compare", __name__)

MAX_COMPARED = 8  # curves one plot keeps apart (and one colour each)
MAX_IDS_TEXT = 400  # characters of ids a link may carry: 8 ids and some slack, not a dump
NEAR_BEST = 0.95  # "experiments to 95 %": the first experiment within 5 % of the best reward
MAX_REACTION_LABEL = 32  # characters of a reaction's name in the legend (the table has it all)
PERSON = "user:"  # experiments.chosen_by of a point a person chose
POINTS = "points"  # the optimizer name of a request that runs only given points (maosic.plans)
_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits; 18 of them stay inside a 64-bit row id


class CompareError(Exception):
    """What is wrong with the comparison asked for, in words for the page; ``status`` is the
    HTTP status of the reply (400 a malformed list, 404 a request the account may not see)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class Comparison:
    requests: list[dict[str, Any]]  # one per request, oldest first
    best_overall: float | None  # the best reward any of them reached (same metric only)
    threshold: float | None  # the reward counted as "within 5 % of the best"
    overlay: bool  # False when the rewards are different quantities
    notes: list[str]  # differences a reader must know (metrics, reactions)

    def payload(self) -> dict[str, Any]:
        return {
            "overlay": self.overlay,
            "best_reward_overall": self.best_overall,
            "near_best_fraction": NEAR_BEST,
            "near_best_threshold": self.threshold,
            "notes": self.notes,
            "requests": self.requests,
        }


def parse_ids(values: list[str]) -> list[int]:
    """Request ids from ``?ids=3,7,9`` (or ``?ids=3&ids=7``, as the list's checkboxes send them),
    oldest first and without repeats: the same requests get the same colours however they were
    picked.

    Raises:
        CompareError: no ids, fewer than two, more than :data:`MAX_COMPARED`, or one that is
            not a request number.
    """
    text = ",".join(values)
    if len(text) > MAX_IDS_TEXT:
        raise CompareError(f"Compare at most {MAX_COMPARED} requests at a time.")
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not _ID.fullmatch(part):
            shown = part if len(part) <= 20 else part[:20] + "…"
            raise CompareError(f"{shown!r} is not a request number.")
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) > MAX_COMPARED:
        raise CompareError(
            f"Compare at most {MAX_COMPARED} requests at a time ({len(ids)} were chosen)."
        )
    if len(ids) < 2:
        raise CompareError(
            "Choose at least two requests to compare (tick them on the request list)."
        )
    return sorted(ids)


def _visible(ids: list[int]) -> list[Request]:
    """The requests, in the order asked for, if the account may see every one of them.

    Raises:
        CompareError (404): one is missing or neither the account's, shared with it, nor
            visible to staff; the message does not tell which of those (as the run page's 404).
    """
    query = (
        select(Request)
        .where(Request.id.in_(ids))
        .where(rundata.visible())
        .options(joinedload(Request.reaction), joinedload(Request.owner))
    )
    found = {r.id: r for r in db().scalars(query).unique()}
    missing = [i for i in ids if i not in found]
    if missing:
        names = ", ".join(f"#{i}" for i in missing)
        raise CompareError(
            f"No request {names} that you may see: only your own requests and those shared "
            "with you can be compared.",
            status=404,
        )
    return [found[i] for i in ids]


def _experiments(ids: list[int]) -> dict[int, list[tuple[int, float | None, str | None]]]:
    """(number, reward, chosen_by) of each request's experiments in number order; one query."""
    out: dict[int, list[tuple[int, float | None, str | None]]] = {i: [] for i in ids}
    rows = db().execute(
        select(Experiment.request_id, Experiment.number, Experiment.reward, Experiment.chosen_by)
        .where(Experiment.request_id.in_(ids))
        .order_by(Experiment.request_id, Experiment.number)
    )
    for request_id, number, reward, chosen_by in rows:
        finite = reward if reward is not None and math.isfinite(reward) else None
        out[request_id].append((int(number), finite, chosen_by))
    return out


def best_so_far(experiments: list[tuple[int, float | None, str | None]]) -> list[list[float]]:
    """[[experiment number, best reward up to it], ...] over experiments with a reward."""
    return rundata.best_so_far([{"number": n, "reward": r} for n, r, _ in experiments])


def near_best_threshold(best: float) -> float:
    """The reward within 5 % of ``best``: 95 % of it, or for a negative best (a distance such as
    target_wavelength's -|error| nm) 5 % of its size below it, so the bar is never above it."""
    return best - (1.0 - NEAR_BEST) * abs(best)


def first_reaching(curve: list[list[float]], threshold: float) -> int | None:
    """The number of the first experiment whose best-so-far reward reaches ``threshold``."""
    for number, best in curve:
        if best >= threshold:
            return int(number)
    return None


def _metric(target: Any) -> tuple[str, str]:
    """(metric name, the target's reward-defining settings as canonical JSON). A goal only
    says when to stop: it leaves the reward unchanged, so it does not count."""
    if not isinstance(target, dict):
        return "?", "null"
    settings = {k: v for k, v in target.items() if k != "goal"}
    return str(target.get("metric") or "?"), json.dumps(settings, sort_keys=True, default=str)


def _choosers(experiments: list[tuple[int, float | None, str | None]]) -> Counter:
    """Person-chosen points per person (experiments.chosen_by "user:<name>")."""
    people: Counter[str] = Counter()
    for _, _, chosen_by in experiments:
        if chosen_by and chosen_by.startswith(PERSON):
            people[chosen_by[len(PERSON) :] or "?"] += 1
    return people


def _label(entry: dict[str, Any]) -> str:
    """The legend's name of a request: id, reaction, optimizer and who chose points."""
    reaction = entry["reaction"]
    if len(reaction) > MAX_REACTION_LABEL:  # cut the name, keep the optimizer and the people
        reaction = reaction[: MAX_REACTION_LABEL - 1] + "…"
    label = f"#{entry['id']} {reaction} · {entry['optimizer']}"
    people = entry["chosen_by_people"]
    if entry["optimizer"] == POINTS:
        who = ", ".join(people) or (entry["owner"] or "?")
        return f"{label} (points chosen by {who})"
    if people:
        return f"{label} + {entry['person_chosen']} by {', '.join(people)}"
    return label


def compare(ids: list[int]) -> Comparison:
    runs = _visible(ids)
    experiments = _experiments(ids)
    summaries = rundata.summaries(runs)
    metrics = {run.id: _metric(run.target) for run in runs}
    entries: list[dict[str, Any]] = []
    for index, (run, summary) in enumerate(zip(runs, summaries, strict=True)):
        curve = best_so_far(experiments[run.id])
        people = _choosers(experiments[run.id])
        entry = {
            "index": index,  # the curve's colour on the page
            "id": run.id,
            "reaction": summary["reaction"],
            "owner": summary["owner"],
            "optimizer": run.optimizer,
            "status": summary["status"],
            "target": run.target,
            "metric": metrics[run.id][0],
            "reward_unit": summary["reward_unit"],
            "budget": run.budget,
            "n_done": summary["n_done"],
            "best_reward": curve[-1][1] if curve else None,
            "person_chosen": sum(people.values()),
            "chosen_by_people": sorted(people),
            "experiments_to_near_best": None,
            "best_so_far": curve,
        }
        entry["label"] = _label(entry)
        entries.append(entry)

    notes: list[str] = []
    overlay = True
    names = {m[0] for m in metrics.values()}
    if len(names) > 1:
        overlay = False
        listed = "; ".join(
            f"#{e['id']} {e['metric']}" + (f" ({e['reward_unit']})" if e["reward_unit"] else "")
            for e in entries
        )
        notes.append(
            f"These requests target different metrics ({listed}): their rewards are different "
            "quantities, so their curves are not overlaid and no '95 %' figure is given."
        )
    elif len({m[1] for m in metrics.values()}) > 1:
        overlay = False
        notes.append(
            f"These requests target the metric {names.pop()} with different settings (e.g. a "
            "different wavelength or window): their rewards are not comparable, so their curves "
            "are not overlaid and no '95 %' figure is given."
        )
    reactions = sorted({e["reaction"] for e in entries})
    if len(reactions) > 1:
        notes.append(
            "These requests run different reactions ("
            + "; ".join(reactions)
            + "): the curves compare how fast each search went, not the same chemistry."
        )

    best_overall = threshold = None
    if overlay:
        bests = [e["best_reward"] for e in entries if e["best_reward"] is not None]
        if bests:
            best_overall = max(bests)
            threshold = near_best_threshold(best_overall)
            for e in entries:
                e["experiments_to_near_best"] = first_reaching(e["best_so_far"], threshold)
    return Comparison(entries, best_overall, threshold, overlay, notes)


@bp.app_context_processor
def _limits() -> dict[str, Any]:
    # The request list's "Compare selected" says (and its script enforces) the same limit.
    return {"compare_max": MAX_COMPARED}


def _asked() -> Comparison:
    return compare(parse_ids(request.args.getlist("ids")))


@bp.route("/compare")
@login_required
def compare_page() -> tuple[str, int]:
    ids_text = ",".join(request.args.getlist("ids"))[:MAX_IDS_TEXT]
    try:
        comparison = _asked()
    except CompareError as exc:
        return render_template("compare.html", error=exc.message, ids_text=ids_text), exc.status
    payload = comparison.payload()
    return render_template(
        "compare.html",
        error=None,
        comparison=comparison,
        ids_text=",".join(str(e["id"]) for e in comparison.requests),
        data_json=htmlsafe_json_dumps(payload, dumps=current_app.json.dumps),
        near_best_percent=round(NEAR_BEST * 100),
    ), 200


@bp.route("/compare.json")
@login_required
def compare_json() -> Response:
    """The compared curves and figures as a download (the page's numbers, every point)."""
    try:
        comparison = _asked()
    except CompareError as exc:
        return Response(
            json.dumps({"error": exc.message}), status=exc.status, mimetype="application/json"
        )
    ids = "-".join(str(e["id"]) for e in comparison.requests)
    return Response(
        json.dumps(comparison.payload(), indent=1),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="compare-{ids}.json"'},
    )

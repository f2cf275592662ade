"""The run page's parts for experiments people choose (issue 21; the core side is
maosic/plans.py and maosic/plan_service.py).

* ``POST /requests/<id>/repeat``: run an experiment (or the best) again n times, a random
  condition between each two, as a new request; the page then follows the new request.
* ``POST /requests/<id>/propose``: a person's next point beside the optimizer's suggestion.
* ``GET /requests/<id>/choose.json``: what runs next (the optimizer's suggestion or the points
  waiting), and the reproducibility of every replicate group touching the request, with each
  run's spectrum of the target's kind for the overlay.

Changes go through the core (JSON-RPC, acting for the signed-in user) like submission and
cancel, so its checks hold whatever the form sends; the JSON reads the database.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, url_for
from flask import request as http_request
from flask_login import current_user, login_required
from sqlalchemy import select

from cloud import rundata
from cloud.context import db, web
from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic import plans
from maosic.db.models import Experiment, Request, Spectrum
from maosic.plan_service import replicate_groups

bp = Blueprint("choose", __name__)

ACTIVE = ("queued", "running", "paused")
# The spectrum a target's reward is read from, for the replicate overlay.
KIND_OF_METRIC = {
    "max_abs_cd_at_exciton": "cd",
    "max_abs_cd_in_window": "cd",
    "target_wavelength": "absorbance",
    "max_pl_intensity": "pl",
    "max_plqy": "pl",
}
MAX_OVERLAID = 12  # spectra in one overlay: beyond that the lines are a smear


def _core(method: str, **params: Any) -> Any | None:
    """Call the core for the signed-in user; a refusal or an absent core is flashed."""
    try:
        return web().core.call(method, as_user=current_user.username, **params)
    except RpcFailure as exc:
        flash(f"Refused: {exc.message}", "error")
    except RpcUnavailable:
        flash("The core is not reachable; try again in a moment.", "error")
    return None


def _number(field: str, integer: bool = False) -> float | int | None:
    """A form number, or None when left empty; a non-number is flashed and aborts the post."""
    text = (http_request.form.get(field) or "").strip()
    if not text:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        flash(f"{field}: {text[:30]!r} is not a {'whole number' if integer else 'number'}", "error")
        raise _BadForm from None
    if not math.isfinite(value):
        flash(f"{field}: must be a finite number", "error")
        raise _BadForm
    return value


class _BadForm(Exception):
    pass


@bp.route("/requests/<int:request_id>/repeat", methods=["POST"])
@login_required
def repeat(request_id: int) -> Response:
    request = rundata.load_request(request_id)
    if not rundata.may_manage(request):
        abort(403)  # a colleague may look, not spend the owner's reagents
    back = redirect(url_for("runs.run_page", request_id=request.id))
    try:
        n = _number("n", integer=True)
        number = _number("number", integer=True)
    except _BadForm:
        return back
    reply = _core(
        "request.repeat",
        id=request.id,
        n=n if n is not None else 3,
        number=number,
        between=http_request.form.get("between") == "on",
    )
    if reply is None:
        return back
    flash(
        f"Request {reply['id']} repeats those conditions {reply['replicates']} times "
        f"({reply['budget']} experiments with the conditions between).",
        "info",
    )
    return redirect(url_for("runs.run_page", request_id=reply["id"]))


@bp.route("/requests/<int:request_id>/propose", methods=["POST"])
@login_required
def propose(request_id: int) -> Response:
    request = rundata.load_request(request_id)
    if not rundata.may_manage(request):
        abort(403)
    back = redirect(url_for("runs.run_page", request_id=request.id) + "#choose")
    point: dict[str, float] = {}
    try:
        for name in rundata.space_of(request):
            value = _number(f"p-{name}")
            if value is None:
                flash(f"{name}: give a value for every variable", "error")
                return back
            point[name] = value
    except _BadForm:
        return back
    reply = _core("request.propose", id=request.id, points=[point])
    if reply is not None:
        flash(f"Your point runs next: {', '.join(f'{k} = {v:g}' for k, v in point.items())}.",
              "info")  # fmt: skip
    return back


@bp.route("/requests/<int:request_id>/choose.json")
@login_required
def choose_json(request_id: int) -> Response:
    request = rundata.load_request(request_id)
    status = request.status.value
    suggestion = None
    if status in ACTIVE and rundata.may_manage(request):
        try:  # computed by the core on a copy of the optimizer's checkpoint
            suggestion = web().core.call(
                "request.suggest", id=request.id, as_user=current_user.username
            )
        except (RpcFailure, RpcUnavailable):
            suggestion = None
    kind = KIND_OF_METRIC.get((request.target or {}).get("metric", ""), "cd")
    reply = jsonify(
        status=status,
        suggestion=suggestion,
        plan=_plan(request),
        replicates=[_with_spectra(group, kind) for group in replicate_groups(db(), request.id)],
        spectrum_kind=kind,
    )
    reply.headers["Cache-Control"] = "no-store"
    return reply


def _plan(request: Request) -> list[dict[str, Any]]:
    return [plans.describe(p) for p in plans.pending(db(), request.id)]


def _visible(request_id: int) -> bool:
    found = db().scalar(select(Request.id).where(Request.id == request_id, rundata.visible()))
    return found is not None


def _with_spectra(group: dict[str, Any], kind: str) -> dict[str, Any]:
    """The group with each run's spectrum (thinned) for the overlay; runs in requests the
    viewer may not see keep their reward (it is part of the statistics) but not their data."""
    runs = [group["original"], *group["replicates"]][:MAX_OVERLAID]
    seen = {rid: _visible(rid) for rid in {r["request_id"] for r in runs}}
    ids = [r["id"] for r in runs if seen[r["request_id"]]]
    spectra = {
        s.experiment_id: s
        for s in db().scalars(
            select(Spectrum).where(Spectrum.experiment_id.in_(ids), Spectrum.kind == kind)
        )
    }
    # .all(): a Result has keys(), so dict() would take it for a mapping
    query = select(Experiment.id, Experiment.request_id).where(Experiment.id.in_(ids))
    request_of = dict(db().execute(query).all())
    overlay = []
    for run in runs:
        spectrum = spectra.get(run["id"])
        if spectrum is None:
            continue
        payload = rundata.spectrum_payload(spectrum)
        overlay.append(
            {
                "label": f"request {request_of[run['id']]} #{run['number']}",
                "wavelength_nm": payload["wavelength_nm"],
                "value": payload["value"],
                "unit": payload["unit"],
            }
        )
    return {**group, "spectra": overlay}

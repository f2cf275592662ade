"""My requests, the live run page, the experiment page, cancellation and the data downloads."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    url_for,
)
from flask import (
    request as http_request,
)
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from cloud import attachments, rundata, stock
from cloud.context import db, log_cipher, web
from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic.analysis.reward import reward_unit
from maosic.db.crypto import LogKeyError
from maosic.db.models import (
    ACTIVE_STATUSES,
    Experiment,
    HardwareCommand,
    Reaction,
    Request,
    Spectrum,
    User,
)

bp = Blueprint("runs", __name__)

ACTIVE = {s.value for s in ACTIVE_STATUSES}
LIST_ARRAYS_OVER = 12  # audit payload lists longer than this are summarised, not printed


@bp.route("/")
@login_required
def index() -> str:
    query = (
        select(Request)
        .order_by(Request.seq.desc())
        .limit(200)
        # The list shows only the reaction's and owner's names: one joined query, and no
        # decoding of each reaction's configuration JSON.
        .options(
            joinedload(Request.owner).load_only(User.username),
            joinedload(Request.reaction).load_only(Reaction.name),
        )
    )
    requests = rundata.summaries(list(db().scalars(query.where(rundata.visible()))))
    return render_template("runs/index.html", requests=requests)


@bp.route("/requests/<int:request_id>")
@login_required
def run_page(request_id: int) -> str:
    request = rundata.load_request(request_id)
    return render_template(
        "runs/run.html",
        manage=rundata.may_manage(request),
        run=rundata.summary(request),
        space=rundata.space_of(request),
        poll_ms=int(current_app.config["POLL_MS"]),
    )


@bp.route("/requests/<int:request_id>/live.json")
@login_required
def live(request_id: int) -> Response:
    """Everything the run page redraws on each poll.

    Answers 304 when nothing changed since the poll that sent ``If-None-Match``: the page polls
    every second or two for hours, and most polls fall between two experiments.
    """
    request = rundata.load_request(request_id)
    etag = rundata.fingerprint(request)
    if etag in http_request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})
    rows = rundata.experiment_rows(request)
    reply = jsonify(
        run=rundata.summary(request),
        space=rundata.space_of(request),
        experiments=rows,
        best_so_far=rundata.best_so_far(rows),
        latest=rundata.latest_spectra(request),
    )
    reply.set_etag(etag)
    reply.headers["Cache-Control"] = "no-cache"  # the browser revalidates every poll
    return reply


@bp.route("/requests/<int:request_id>/stock.json")
@login_required
def stock_json(request_id: int) -> Response:
    """Whether the lab's stock covers the rest of an active request (cloud.stock).

    Apart from live.json: the stock changes without any database row changing (a refill, another
    request drawing from it), so it cannot share live.json's 304s, and the page asks less often.
    """
    request = rundata.load_request(request_id)
    run = rundata.summary(request)
    if run["status"] not in ACTIVE:
        return jsonify(active=False, known=False, warnings=[])
    report = stock.stock_report(request, run["n_done"])
    reply = jsonify(active=True, **report)
    reply.headers["Cache-Control"] = "no-store"
    return reply


@bp.route("/requests/<int:request_id>/cancel", methods=["POST"])
@login_required
def cancel(request_id: int) -> Response:
    request = rundata.load_request(request_id)
    if not rundata.may_manage(request):
        abort(403)  # shared read-only: the colleague may look, not stop the owner's run
    try:
        web().core.call("request.cancel", id=request.id, as_user=current_user.username)
        flash(f"Request {request.id} is cancelled (a running experiment finishes first).", "info")
    except RpcFailure as exc:
        flash(f"Cannot cancel: {exc.message}", "error")
    except RpcUnavailable:
        flash("The core is not reachable; try again in a moment.", "error")
    return redirect(url_for("runs.run_page", request_id=request.id))


@bp.route("/requests/<int:request_id>/experiments/<int:number>")
@login_required
def experiment_page(request_id: int, number: int) -> str:
    request = rundata.load_request(request_id)
    experiment = rundata.load_experiment(request, number)
    view = rundata.experiment_view(experiment)
    return render_template(
        "runs/experiment.html",
        run={
            "id": request.id,
            "reaction": request.reaction.name,
            "reward_unit": reward_unit(request.target),
        },
        experiment=experiment,
        started_at=rundata.iso(experiment.started_at),
        finished_at=rundata.iso(experiment.finished_at),
        spectra=view["spectra"],
        spectra_json=view["spectra_json"],
        features=view["features"],
        commands=_commands(experiment),
        last_number=db().scalar(
            select(func.max(Experiment.number)).where(Experiment.request_id == request.id)
        ),
        **attachments.experiment_data(request, experiment.id),
    )


def _summarise(value: Any) -> Any:
    """Shorten long arrays (spectra) so the audit table stays readable."""
    if isinstance(value, list) and len(value) > LIST_ARRAYS_OVER:
        return f"[{len(value)} values]"
    if isinstance(value, dict):
        return {k: _summarise(v) for k, v in value.items()}
    return value


def _commands(experiment: Experiment) -> list[dict[str, Any]]:
    rows = list(
        db().scalars(
            select(HardwareCommand)
            .where(HardwareCommand.experiment_id == experiment.id)
            .order_by(HardwareCommand.id)
        )
    )
    if not rows:
        return []  # no key file to read
    cipher = log_cipher()
    out = []
    for row in rows:
        params: Any = "(encrypted; key not available)"
        result: Any = None
        if cipher is not None:
            try:
                params = _summarise(cipher.decrypt_json(row.params_enc))
                if row.result_enc is not None:
                    result = _summarise(cipher.decrypt_json(row.result_enc))
            except LogKeyError:
                params = "(cannot decrypt with the configured key)"
        out.append(
            {
                "method": row.method,
                "ok": row.ok,
                "error_code": row.error_code,
                "params": json.dumps(params) if not isinstance(params, str) else params,
                "result": json.dumps(result) if result is not None else "",
                "sent_at": rundata.iso(row.sent_at),
                "duration_ms": row.duration_ms,
            }
        )
    return out


# -- downloads ---------------------------------------------------------------------------------
def _download(body: str, filename: str, mimetype: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading quote (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.route("/requests/<int:request_id>/experiments.csv")
@login_required
def experiments_csv(request_id: int) -> Response:
    """One row per experiment: parameters, reward, loss and every feature as columns."""
    request = rundata.load_request(request_id)
    rows = rundata.experiment_rows(request)
    features = rundata.features_by_experiment(request)
    params = sorted({k for r in rows for k in (r["params"] or {})})
    feature_names = sorted({k for f in features.values() for k in f})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["number", "status", *params, "reward", "loss", *feature_names]
        + ["error", "started_at", "finished_at", "batch"]
    )
    for r in rows:
        f = features.get(r["number"], {})
        writer.writerow(
            [r["number"], r["status"], *[(r["params"] or {}).get(p) for p in params]]
            + [r["reward"], r["loss"], *[f.get(n) for n in feature_names]]
            + [_cell(r["error"]), r["started_at"], r["finished_at"], r["batch"]]
        )
    return _download(out.getvalue(), f"request-{request.id}-experiments.csv", "text/csv")


def _all_spectra(request: Request) -> list[tuple[int, Spectrum]]:
    result = db().execute(
        select(Experiment.number, Spectrum)
        .join(Spectrum, Spectrum.experiment_id == Experiment.id)
        .where(Experiment.request_id == request.id)
        .order_by(Experiment.number, Spectrum.id)
    )
    return [(int(n), s) for n, s in result]


@bp.route("/requests/<int:request_id>/spectra.csv")
@login_required
def spectra_csv(request_id: int) -> Response:
    """Long format: one row per (experiment, spectrum kind, wavelength)."""
    request = rundata.load_request(request_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["experiment", "kind", "unit", "wavelength_nm", "value"])
    for number, spectrum in _all_spectra(request):
        for x, y in zip(spectrum.wavelength_nm, spectrum.value, strict=False):
            writer.writerow([number, spectrum.kind, spectrum.unit, x, y])
    return _download(out.getvalue(), f"request-{request.id}-spectra.csv", "text/csv")


@bp.route("/requests/<int:request_id>/data.json")
@login_required
def data_json(request_id: int) -> Response:
    """The whole run: summary, experiments with features, spectra (every point) and fits."""
    request = rundata.load_request(request_id)
    rows = rundata.experiment_rows(request)
    features = rundata.features_by_experiment(request)
    spectra: dict[int, list[dict[str, Any]]] = {}
    for number, spectrum in _all_spectra(request):
        payload = dict(rundata.spectrum_payload(spectrum, thin=False))  # shared: copy to edit
        if payload["fit"] is not None:
            # The drawn curve is derivable from the peaks and baseline; keeps the file small.
            payload["fit"] = {
                k: v for k, v in payload["fit"].items() if k not in ("curve", "wavelength_nm")
            }
        spectra.setdefault(number, []).append(payload)
    for row in rows:
        row["features"] = features.get(row["number"], {})
        row["spectra"] = spectra.get(row["number"], [])
    body = json.dumps(
        {
            "request": rundata.summary(request),
            "space": rundata.space_of(request),
            "experiments": rows,
        },
        indent=1,
    )
    return _download(body, f"request-{request.id}.json", "application/json")

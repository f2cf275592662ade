"""Offline characterization on the web (issue 21): attach values and files to an experiment,
download them, and see a reaction's PLQY calibration (in-situ proxy vs absolute PLQY).

Adding is for the request's owner and staff (``rundata.may_manage``); a colleague the request is
shared with sees the attachments and downloads them. Files come back exactly as stored, as a
download (``Content-Disposition: attachment``) of the media type their bytes showed when they
were checked, with ``X-Content-Type-Options: nosniff``: a browser never renders an upload as a
page of this site.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response

from cloud import rundata
from cloud.context import db
from maosic import attachments
from maosic.db.models import Attachment, Reaction, Request

bp = Blueprint("attachments", __name__)
log = logging.getLogger(__name__)
ADD_ENDPOINT = "attachments.add"
# The upload limit of this one form: a file up to the core's limit plus the form's few fields
# (the site's MAX_CONTENT_LENGTH is meant for configuration files of a few kB).
UPLOAD_LIMIT = attachments.MAX_FILE_BYTES + 64 * 1024


def _raise_upload_limit() -> None:
    if request.endpoint == ADD_ENDPOINT:
        request.max_content_length = UPLOAD_LIMIT


@bp.record_once
def _install_limit(state: BlueprintSetupState) -> None:
    # First of the app's before-request functions: CSRF protection reads the form (and so the
    # body) before any view runs, and must read it under this form's own limit.
    app: Flask = state.app
    app.before_request_funcs.setdefault(None, []).insert(0, _raise_upload_limit)


def experiment_data(run: Request, experiment_id: int) -> dict[str, Any]:
    """What the experiment page shows of its attachments (cloud/runs.py passes it on)."""
    rows = attachments.summaries(db(), [experiment_id])
    for row in rows:
        row["created_at"] = rundata.iso(row["created_at"])
    return {
        "attachments": rows,
        "may_attach": rundata.may_manage(run),
        "attachment_kinds": attachments.KINDS,
        "reaction_id": run.reaction_id,
        "max_attachment_mb": attachments.MAX_FILE_BYTES // 2**20,
    }


@bp.route("/requests/<int:request_id>/experiments/<int:number>/attachments", methods=["POST"])
@login_required
def add(request_id: int, number: int) -> Response:
    run = rundata.load_request(request_id)
    experiment = rundata.load_experiment(run, number)
    if not rundata.may_manage(run):
        abort(403)
    upload = request.files.get("file")
    content = upload.read(attachments.MAX_FILE_BYTES + 1) if upload and upload.filename else None
    page = url_for("runs.experiment_page", request_id=run.id, number=number)
    session = db()
    try:
        row = attachments.add(
            session,
            experiment.id,
            current_user.id,
            kind=request.form.get("kind", ""),
            name=request.form.get("name"),
            value=request.form.get("value"),
            unit=request.form.get("unit"),
            content=content,
            filename=upload.filename if content is not None and upload else None,
        )
    except attachments.AttachmentError as exc:
        session.rollback()
        flash(f"Not attached: {exc.field}: {exc.message}", "error")
        return redirect(page + "#attachments")
    session.commit()
    log.info(
        "attachment %d (%s) added to request %d experiment %d by %s",
        row.id, row.kind, run.id, number, current_user.username,
    )  # fmt: skip
    flash(f"Attached {row.name}.", "info")
    return redirect(page + "#attachments")


@bp.route("/requests/<int:request_id>/experiments/<int:number>/attachments/<int:attachment_id>")
@login_required
def download(request_id: int, number: int, attachment_id: int) -> Response:
    run = rundata.load_request(request_id)
    experiment = rundata.load_experiment(run, number)
    row = db().get(Attachment, attachment_id)
    if row is None or row.experiment_id != experiment.id or row.content is None:
        abort(404)
    media_type = row.media_type if row.media_type in attachments.MEDIA_TYPES else None
    response = Response(row.content, mimetype=media_type or "application/octet-stream")
    stem = secure_filename((row.filename or "").rsplit(".", 1)[0])[:80] or row.kind
    name = f"{stem}.{attachments.extension(media_type)}"
    response.headers.set("Content-Disposition", "attachment", filename=name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _visible_request_ids(reaction_id: int) -> list[int] | None:
    """The reaction's requests this account may see; None for staff (all of them)."""
    if current_user.is_staff:
        return None
    query = select(Request.id).where(Request.reaction_id == reaction_id, rundata.visible())
    return list(db().scalars(query))


@bp.route("/reactions/<int:reaction_id>/calibration")
@login_required
def calibration(reaction_id: int) -> str:
    reaction = db().get(Reaction, reaction_id)
    if reaction is None:
        abort(404)
    visible = _visible_request_ids(reaction_id)
    if visible is not None and not visible and reaction.owner_id != current_user.id:
        abort(404)  # as for a request: nobody learns what others measured
    found = attachments.calibration(db(), reaction_id, request_ids=visible)
    fit = found.fit
    target = json.dumps(fit.target()) if fit is not None else None
    plot = {
        "pairs": [[p["proxy"], p["absolute"]] for p in found.pairs],
        "line": _line(found) if fit is not None else [],
    }
    return render_template(
        "attachments/calibration.html",
        reaction=reaction,
        pairs=found.pairs,
        fit=fit,
        min_pairs=attachments.MIN_PAIRS,
        target_json=target,
        plot=plot,
    )


def _line(found: attachments.Calibration) -> list[list[float]]:
    assert found.fit is not None
    xs = [p["proxy"] for p in found.pairs]
    lo, hi = min(xs), max(xs)
    pad = 0.05 * (hi - lo)
    return [[x, found.fit.intercept + found.fit.slope * x] for x in (lo - pad, hi + pad)]

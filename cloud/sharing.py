"""Sharing a request read-only with named colleagues (the paper's remote collaboration).

The owner (or staff) names a colleague's account; the colleague then sees the request in their
list and opens the same run page, experiment pages and exports, without the cancel button and
without a way to share further. Removing the share takes the view away at the next page load.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from cloud import rundata
from cloud.context import db
from maosic.db.models import RequestShare, User

bp = Blueprint("sharing", __name__)
log = logging.getLogger(__name__)
MAX_SHARES = 50  # colleagues per request: a lab group, not a mailing list


@bp.route("/requests/<int:request_id>/sharing", methods=["GET", "POST"])
@login_required
def sharing(request_id: int) -> str | Response:
    run = rundata.load_request(request_id)
    if not rundata.may_manage(run):
        abort(403)
    session = db()
    shares = list(
        session.scalars(
            select(RequestShare).where(RequestShare.request_id == run.id).order_by(RequestShare.id)
        )
    )
    error = ""
    if request.method == "POST":
        action = request.form.get("action", "")
        if action == "remove":
            gone = next((s for s in shares if str(s.id) == request.form.get("share", "")), None)
            if gone is None:
                abort(404)
            session.delete(gone)
            session.commit()
            log.info("request %d no longer shared with %s", run.id, gone.user.username)
            flash(f"No longer shared with {gone.user.username}.", "info")
            return redirect(url_for("sharing.sharing", request_id=run.id))
        if action != "add":
            abort(400)
        error = _add(run, shares, (request.form.get("username") or "").strip())
        if not error:
            return redirect(url_for("sharing.sharing", request_id=run.id))
    return render_template(
        "runs/sharing.html", run=rundata.summary(run), shares=shares, error=error
    ), (400 if error else 200)


def _add(run, shares: list[RequestShare], username: str) -> str:
    """Share with ``username``; the reason it cannot be, or ''."""
    if not username or len(username) > 64:
        return "give a colleague's user name"
    session = db()
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        return f"there is no active account named {username!r}"
    if user.id == run.owner_id:
        return "the owner sees the request already"
    if any(s.user_id == user.id for s in shares):
        return f"already shared with {username}"
    if len(shares) >= MAX_SHARES:
        return f"a request can be shared with at most {MAX_SHARES} colleagues"
    session.add(RequestShare(request_id=run.id, user_id=user.id))
    session.commit()
    log.info("request %d shared with %s by %s", run.id, username, current_user.username)
    flash(f"Shared with {username}: they can follow the run, not change it.", "success")
    return ""

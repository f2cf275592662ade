"""Admins: the list of accounts, their roles and whether they may log in."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from cloud.accounts import role_required
from cloud.context import db
from cloud.forms import RoleForm
from maosic.db.models import Request, Role, User

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users")
@role_required(Role.ADMIN)
def users() -> str:
    session = db()
    counts = dict(
        session.execute(select(Request.owner_id, func.count()).group_by(Request.owner_id)).all()
    )
    rows = []
    for user in session.scalars(select(User).order_by(User.username)):
        form = RoleForm(prefix=f"u{user.id}", role=user.role.value, active=user.active)
        rows.append({"user": user, "form": form, "n_requests": counts.get(user.id, 0)})
    return render_template("admin/users.html", rows=rows)


@bp.route("/users/<int:user_id>", methods=["POST"])
@role_required(Role.ADMIN)
def update_user(user_id: int) -> Response:
    session = db()
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    form = RoleForm(prefix=f"u{user.id}")
    if not form.validate_on_submit():
        flash(f"Not saved: {form.errors}", "error")
        return redirect(url_for("admin.users"))
    role = Role(form.role.data)
    if user.id == current_user.id and (role != Role.ADMIN or not form.active.data):
        # An admin demoting or disabling themselves could leave the site without any admin.
        flash("You cannot remove your own admin role or disable yourself.", "error")
        return redirect(url_for("admin.users"))
    user.role, user.active = role, bool(form.active.data)
    if user.active:
        user.failed_logins, user.locked_until = 0, None  # re-enabling also lifts a lock-out
    session.commit()
    flash(f"{user.username}: role {role.value}, {'active' if user.active else 'disabled'}.", "info")
    return redirect(url_for("admin.users"))

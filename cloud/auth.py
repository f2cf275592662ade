"""Accounts: register, log in (with lock-out after repeated failures), log out, change password."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from cloud.accounts import Account, find_user
from cloud.context import db, web
from cloud.forms import LoginForm, NotificationsForm, PasswordForm, RegisterForm
from maosic.db.models import Role, User, utcnow
from maosic.db.passwords import hash_password, verify_password
from maosic.notify import WebhookRefused, check_webhook_url

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


def _safe_next(target: str | None) -> str:
    """Only follow ``next`` to a path on this site (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/"):
            return target
    return url_for("runs.index")


@bp.route("/register", methods=["GET", "POST"])
def register() -> str | Response:
    form = RegisterForm()
    if form.validate_on_submit():
        session = db()
        if find_user(form.username.data) is not None:
            form.username.errors.append("this username is taken")
        else:
            user = User(
                username=form.username.data,
                email=form.email.data or None,
                password_hash=hash_password(form.password.data),
                role=Role.USER,
            )
            session.add(user)
            try:
                session.commit()
            except IntegrityError:  # the same name registered a moment ago by someone else
                session.rollback()
                form.username.errors.append("this username is taken")
                return render_template("auth/register.html", form=form)
            login_user(Account.from_row(user))
            flash(f"Welcome, {user.username}. Your account is ready.", "success")
            return redirect(url_for("runs.index"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    address = request.remote_addr or "unknown"
    if form.validate_on_submit():
        if web().login_failures.blocked(address):
            flash("Too many failed logins from your address: try again later.", "error")
            return render_template("auth/login.html", form=form), 429
        session = db()
        user = find_user(form.username.data)
        now = utcnow()
        if user is not None and user.locked_until and user.locked_until > now:
            wait_min = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
            flash(f"Too many failed logins: try again in {wait_min} minutes.", "error")
            return render_template("auth/login.html", form=form), 429
        ok = verify_password(user.password_hash if user else None, form.password.data)
        if user is not None and ok and user.active:
            user.failed_logins = 0
            user.locked_until = None
            session.commit()
            login_user(Account.from_row(user))
            return redirect(_safe_next(request.args.get("next")))
        web().login_failures.record(address)
        # %r: a username with a newline in it cannot forge a second log line
        log.warning("failed login as %r from %s", (form.username.data or "")[:64], address)
        if user is not None and not ok:
            user.failed_logins = (user.failed_logins or 0) + 1
            if user.failed_logins >= int(current_app.config["LOGIN_MAX_FAILURES"]):
                user.locked_until = now + timedelta(seconds=int(current_app.config["LOGIN_LOCK_S"]))
                user.failed_logins = 0
            session.commit()
        flash("Wrong username or password.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    # POST only (with the CSRF token): a link or image on another site cannot log a user out.
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> str | Response:
    form = PasswordForm()
    if form.validate_on_submit():
        session = db()
        user = session.get(User, current_user.id)
        if user is None or not verify_password(user.password_hash, form.current.data):
            form.current.errors.append("this is not your current password")
        else:
            user.password_hash = hash_password(form.password.data)
            session.commit()
            login_user(Account.from_row(user))  # keep this session; others are now invalid
            flash("Password changed.", "success")
            return redirect(url_for("runs.index"))
    return render_template("auth/password.html", form=form)


@bp.route("/account/notifications", methods=["GET", "POST"])
@login_required
def notifications() -> str | Response:
    """E-mail and webhook for the owner's requests ending or pausing (maosic/notify.py)."""
    session = db()
    user = session.get(User, current_user.id)
    form = NotificationsForm(obj=None if request.method == "POST" else user)
    if form.validate_on_submit():
        url = (form.webhook_url.data or "").strip()
        try:
            if url:
                allow = bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE"))
                check_webhook_url(url, allow_private=allow)
        except WebhookRefused as exc:
            form.webhook_url.errors.append(str(exc))
        else:
            user.email = (form.email.data or "").strip() or None
            user.notify_email = bool(form.notify_email.data)
            user.webhook_url = url or None
            session.commit()
            flash("Notification settings saved.", "success")
            return redirect(url_for("auth.notifications"))
    smtp = bool(current_app.config.get("SMTP_CONFIGURED"))
    return render_template("auth/notifications.html", form=form, smtp=smtp)

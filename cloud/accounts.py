"""The logged-in account as flask-login sees it, and the role checks the blueprints use."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, jsonify, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select

from cloud.context import db
from maosic.db.models import Role, User

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see this page."
login_manager.login_message_category = "info"
# Forget a session whose cookie moved to another browser fingerprint.
login_manager.session_protection = "strong"

ROLE_RANK = {Role.USER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def session_id_of(user_id: int, password_hash: str) -> str:
    """Part of the password hash in the session id: changing the password logs out every other
    session of that account, without a server-side session table."""
    return f"{user_id}:{password_hash[-16:]}"


@dataclass(frozen=True)
class Account(UserMixin):
    """A detached snapshot of a ``users`` row; ``session_id`` changes with the password."""

    id: int
    username: str
    role: Role
    session_id: str

    @classmethod
    def from_row(cls, user: User) -> Account:
        return cls(user.id, user.username, user.role, session_id_of(user.id, user.password_hash))

    def get_id(self) -> str:
        return self.session_id

    @property
    def is_staff(self) -> bool:
        """Operators and admins see every request and the hardware pages."""
        return ROLE_RANK[self.role] >= ROLE_RANK[Role.OPERATOR]

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@login_manager.unauthorized_handler
def _unauthorized() -> Response:
    """JSON endpoints answer 401 (the page's script reloads to the login); pages redirect."""
    if request.path.endswith(".json") or request.path.startswith("/api/"):
        reply = jsonify(ok=False, error="log in first")
        reply.status_code = 401
        return reply
    return redirect(url_for(login_manager.login_view, next=request.full_path.rstrip("?")))


@login_manager.user_loader
def load_account(session_id: str) -> Account | None:
    user_id, _, fingerprint = session_id.partition(":")
    if not user_id.isdigit():
        return None
    # Runs on every request: a plain column query costs half of loading a User object, and the
    # account needs nothing else from the row.
    row = (
        db()
        .execute(
            select(User.username, User.role, User.active, User.password_hash).where(
                User.id == int(user_id)
            )
        )
        .first()
    )
    if row is None or not row.active or row.password_hash[-16:] != fingerprint:
        return None
    return Account(
        int(user_id), row.username, row.role, session_id_of(int(user_id), row.password_hash)
    )


def find_user(username: str) -> User | None:
    return db().scalars(select(User).where(User.username == username)).first()


def role_required(role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Allow the view to accounts of ``role`` or higher; others get 403, anonymous the login."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if ROLE_RANK[current_user.role] < ROLE_RANK[role]:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate

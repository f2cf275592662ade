"""Who is calling the core's handler: every call is authenticated before it is dispatched.

Two credentials are accepted (docs/security.md, "The core's handler"):

- ``Authorization: Bearer <installation token>``: this installation's own services (the web site,
  terminals on the core's machine). The token is ``core_token`` or ``instance/core.token``.
  Such a caller acts as the account named in the ``X-MAOSIC-User`` header (the web site sends
  the logged-in user's name), or as the installation itself (staff rights) without it.
- ``Authorization: Basic <user:password>``: a person's own account, e.g. ``user_control`` on
  another machine. Failures count towards the same lock-out as the web site's login form.

The acting user never comes from a JSON-RPC parameter: it is fixed here, from the credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maosic.db.models import Role, User, utcnow
from maosic.db.passwords import verify_password
from maosic.ratelimit import FailureWindow

log = logging.getLogger(__name__)

USER_HEADER = "HTTP_X_MAOSIC_USER"  # WSGI name of the X-MAOSIC-User header
MAX_USERNAME = 64  # users.username is VARCHAR(64)
MAX_PASSWORD = 1024  # scrypt of a longer one is only a way to burn the core's CPU
LOGIN_MAX_FAILURES = 5  # as the web site: failed passwords before the account is locked
LOGIN_LOCK_S = 900.0  # how long a locked account stays locked (s)
ADDRESS_MAX_FAILURES = 30  # as the web site: failed passwords one address may send ...
ADDRESS_WINDOW_S = 900.0  # ... within this window (s), before its Basic calls are refused
STAFF_ROLES = (Role.OPERATOR, Role.ADMIN)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one JSON-RPC call.

    ``user_id``/``username``: the account acted for (None: the installation itself);
    ``staff``: sees and cancels every request (operators, admins, the installation).
    """

    user_id: int | None
    username: str | None
    staff: bool
    via: str  # "installation token" or "password": for the log

    def owns(self, owner_id: int | None) -> bool:
        return self.staff or (owner_id is not None and owner_id == self.user_id)


class AuthFailure(Exception):
    """The call is refused before it is dispatched; ``message`` tells the caller what is missing
    or wrong (never whether an account exists)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


INSTALLATION = Caller(None, None, True, "installation token")


class Authenticator:
    """Checks one HTTP request's credentials against the installation token and the accounts."""

    def __init__(self, sessions: sessionmaker[Session], installation_token: str):
        if len(installation_token) < 16:
            raise ValueError("the core's installation token must have at least 16 characters")
        self._sessions = sessions
        self._token = installation_token.encode()
        # Each wrong password costs the core a scrypt hash (~0.1 s): one address may not make
        # it hash for ever under ever new usernames.
        self._failures = FailureWindow(ADDRESS_MAX_FAILURES, ADDRESS_WINDOW_S)

    def caller(self, environ: dict[str, Any]) -> Caller:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            if not hmac.compare_digest(value.strip().encode(), self._token):
                raise AuthFailure("the core refused this bearer token")
            acting = environ.get(USER_HEADER, "").strip()
            return self._acting_user(acting) if acting else INSTALLATION
        if scheme == "basic":
            address = str(environ.get("REMOTE_ADDR", "?"))
            if self._failures.blocked(address):
                raise AuthFailure("too many failed logins from your address: try again later")
            username, password = _basic_credentials(value)
            try:
                return self._password_user(username, password)
            except AuthFailure:
                self._failures.record(address)
                raise
        raise AuthFailure(
            "authentication required: send 'Authorization: Basic <user:password>' (your account) "
            "or 'Authorization: Bearer <token>' (this installation's token, instance/core.token)"
        )

    def _acting_user(self, username: str) -> Caller:
        if len(username) > MAX_USERNAME:
            raise AuthFailure("X-MAOSIC-User: not a known, active account")
        with self._sessions() as session:
            user = session.scalars(select(User).where(User.username == username)).first()
            if user is None or not user.active:
                raise AuthFailure("X-MAOSIC-User: not a known, active account")
            return Caller(user.id, user.username, user.role in STAFF_ROLES, "installation token")

    def _password_user(self, username: str, password: str) -> Caller:
        refused = AuthFailure("wrong username or password, or the account is locked or inactive")
        with self._sessions() as session:
            user = session.scalars(select(User).where(User.username == username)).first()
            now = utcnow()
            if user is not None and user.locked_until and user.locked_until > now:
                raise refused
            ok = verify_password(user.password_hash if user else None, password)
            if user is None:
                raise refused
            if not ok:
                user.failed_logins = (user.failed_logins or 0) + 1
                if user.failed_logins >= LOGIN_MAX_FAILURES:
                    user.locked_until = now + timedelta(seconds=LOGIN_LOCK_S)
                    user.failed_logins = 0
                session.commit()
                raise refused
            if not user.active:
                raise refused
            if user.failed_logins:
                user.failed_logins = 0
                session.commit()
            return Caller(user.id, user.username, user.role in STAFF_ROLES, "password")


def _basic_credentials(value: str) -> tuple[str, str]:
    malformed = AuthFailure("malformed Basic credentials: expected base64 of 'user:password'")
    if len(value) > 4 * (MAX_USERNAME + MAX_PASSWORD):
        raise malformed
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise malformed from None
    username, sep, password = decoded.partition(":")
    if not sep or not username or len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        raise malformed
    return username, password

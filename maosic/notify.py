"""Telling a request's owner that it finished, failed, paused or was cancelled.

A chemist submits and walks away: when a request reaches one of those states its owner gets an
e-mail (through the SMTP server the settings name, to the address on the account, unless the
owner turned e-mail off) and, when the owner set one, a JSON POST to a webhook URL. Both are off
until configured: no SMTP host, no e-mail; no URL, no webhook.

Sending never holds up the lab: it runs on a short-lived thread with timeouts, and a failure is
logged, not raised. A webhook URL is the user's input, so it is checked before every call: http
or https only, and (unless ``webhook_allow_private``) an address on the public internet, never
the lab's own network (a webhook must not become a way to reach the daemon or the database).
"""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import socket
import threading
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy.orm import Session, sessionmaker

from maosic.db.models import Request, RequestStatus

log = logging.getLogger(__name__)

# The states a person wants to hear about; "running" and "queued" are not news.
NOTIFIED: frozenset[RequestStatus] = frozenset(
    {RequestStatus.DONE, RequestStatus.FAILED, RequestStatus.PAUSED, RequestStatus.CANCELLED}
)
SMTP_TIMEOUT_S = 10.0
WEBHOOK_TIMEOUT_S = 5.0
MAX_WEBHOOK_URL = 500


class WebhookRefused(ValueError):
    """A webhook URL that may not be called; the message says why."""


@dataclass(frozen=True)
class Notice:
    """What the owner is told about one request."""

    request_id: int
    name: str
    owner: str
    status: str
    reason: str
    n_done: int
    budget: int
    best_reward: float | None
    url: str  # the run page, when the site's address is known

    def subject(self) -> str:
        return f"MAOSIC request {self.request_id} ({self.name}): {self.status}"

    def text(self) -> str:
        best = "none yet" if self.best_reward is None else f"{self.best_reward:.4g}"
        lines = [
            f"Your request {self.request_id}, {self.name}, is {self.status}: {self.reason}.",
            f"Experiments: {self.n_done} of {self.budget}. Best reward: {best}.",
        ]
        if self.url:
            lines.append(f"Run page: {self.url}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NotifySettings:
    smtp_host: str = ""  # empty: no e-mail
    smtp_port: int = 25
    smtp_from: str = "maosic@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    site_url: str = ""  # e.g. https://lab.example.org/ (links in the messages)
    webhook_allow_private: bool = False  # tests and closed networks only


def notify_settings(settings: Any) -> NotifySettings:
    """The notification part of the core's settings (maosic.config.Settings)."""
    return NotifySettings(
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_from=settings.smtp_from,
        smtp_user=settings.smtp_user,
        smtp_password=settings.smtp_password,
        smtp_starttls=settings.smtp_starttls,
        site_url=settings.site_url,
        webhook_allow_private=settings.webhook_allow_private,
    )


def check_webhook_url(url: str, allow_private: bool = False) -> str:
    """``url`` when it may be called, else WebhookRefused naming the problem. Checked when the
    user saves it and again before each call (a name may resolve elsewhere by then)."""
    if not isinstance(url, str) or not url or len(url) > MAX_WEBHOOK_URL:
        raise WebhookRefused(f"a webhook URL is http(s)://... of at most {MAX_WEBHOOK_URL} chars")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("a webhook URL must start with http:// or https:// and name a host")
    if parts.username or parts.password:
        raise WebhookRefused("a webhook URL must not carry a user name or password")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise WebhookRefused(f"the webhook's host {parts.hostname!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise WebhookRefused(
                f"the webhook's host {parts.hostname!r} is on a private or local network "
                f"({address}); only public addresses are called"
            )
    return url


class Notifier:
    """Sends notices by e-mail and webhook as the settings and the owner's account say."""

    def __init__(self, settings: NotifySettings):
        self.settings = settings

    def send(self, notice: Notice, email: str | None, webhook: str | None) -> list[str]:
        """Send now (the caller's thread); returns what went out, e.g. ``["email", "webhook"]``."""
        sent = []
        if email and self.settings.smtp_host:
            try:
                self._email(notice, email)
                sent.append("email")
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("request %d: e-mail to its owner failed: %s", notice.request_id, exc)
        if webhook:
            try:
                check_webhook_url(webhook, self.settings.webhook_allow_private)
                reply = requests.post(
                    webhook, json=asdict(notice), timeout=WEBHOOK_TIMEOUT_S, allow_redirects=False
                )
                reply.raise_for_status()
                sent.append("webhook")
            except (WebhookRefused, requests.RequestException) as exc:
                log.warning("request %d: webhook failed: %s", notice.request_id, exc)
        return sent

    def _email(self, notice: Notice, to: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = to
        message["Subject"] = notice.subject()
        message.set_content(notice.text())
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password)
            smtp.send_message(message)


class RequestNotices:
    """The worker's hook: after a campaign ends or pauses, tell the owner, once per state (a
    paused request is retried every few seconds; its owner hears of the pause once)."""

    def __init__(self, sessions: sessionmaker[Session], notifier: Notifier):
        self.sessions = sessions
        self.notifier = notifier
        self._told: dict[int, str] = {}
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []  # tests join them

    def __call__(self, request_id: int, status: RequestStatus) -> None:
        if status not in NOTIFIED:
            return
        with self._lock:
            if self._told.get(request_id) == status.value:
                return
            self._told[request_id] = status.value
        found = self._read(request_id)
        if found is None:
            return
        notice, email, webhook = found
        thread = threading.Thread(
            target=self.notifier.send, args=(notice, email, webhook), name="maosic-notify"
        )
        thread.daemon = True
        thread.start()
        self.threads.append(thread)

    def _read(self, request_id: int) -> tuple[Notice, str | None, str | None] | None:
        with self.sessions() as session:
            request = session.get(Request, request_id)
            if request is None or request.owner is None:
                return None
            owner = request.owner
            site = self.notifier.settings.site_url.rstrip("/")
            troubled = request.status in (RequestStatus.FAILED, RequestStatus.PAUSED)
            reason = (request.failure_reason if troubled else request.stop_reason) or ""
            notice = Notice(
                request_id=request.id,
                name=request.reaction.name if request.reaction else "",
                owner=owner.username,
                status=request.status.value,
                reason=reason[:500],
                n_done=request.n_done,
                budget=request.budget,
                best_reward=request.best_reward,
                url=f"{site}/requests/{request.id}" if site else "",
            )
            email = owner.email if getattr(owner, "notify_email", True) else None
            return notice, email, getattr(owner, "webhook_url", None)

"""Configuration of the web app: defaults -> maosic settings -> ``test_config``.

Keys read from ``app.config`` (all optional):

``SECRET_KEY``        session signing key (default: maosic's secret key file)
``DATABASE_URL``      SQLAlchemy URL (default: maosic setting ``database_url``)
``CORE_URL``          the core's JSON-RPC handler (default ``core_url``)
``HARDWARE_URL``      the daemon's JSON-RPC endpoint (default ``hardware_url``)
``HARDWARE_TOKEN``    bearer token for the daemon (default ``hardware_token``)
``HARDWARE_CA_FILE``  CA that signed the daemon's certificate, for an https:// daemon
                      (default ``hardware_ca_file``; empty: the system's CAs)
``HARDWARE_CLIENT_CERT`` PEM with the web site's client certificate and key, for a daemon
                      started with ``--require-client-cert`` (default ``hardware_client_cert``)
``CORE_TOKEN``        this installation's token at the core's handler (default ``core_token``,
                      else ``instance/core.token``, created on first use)
``LOG_KEY_FILE``      Fernet key file of the audit log (default ``resolved_log_key_file``)
``WTF_CSRF_ENABLED``  CSRF protection (default True; tests may switch it off)
``TESTING``           Flask's testing flag
``RPC_TIMEOUT_S``     HTTP timeout of one RPC call from the web site, s (default 30)
``LOGIN_MAX_FAILURES`` failed logins before an account is locked (default 5)
``LOGIN_LOCK_S``      how long a locked account stays locked, s (default 900)
``LOGIN_IP_MAX_FAILURES``, ``LOGIN_IP_WINDOW_S`` failed logins one client address may make
                      within the window (s) before it is refused (default 30 in 900 s)
``SESSION_COOKIE_SECURE`` send the session cookie only over HTTPS (default: maosic setting
                      ``session_cookie_secure``; a request that arrived over HTTPS, directly
                      or through a trusted proxy, gets a Secure cookie in any case)
``TRUSTED_PROXIES``   reverse proxies in front of the site whose X-Forwarded-For/-Proto/-Host
                      are believed (default: maosic setting ``trusted_proxies``, 0)
``POLL_MS``           how often the run page polls for news, ms (default 1500)
"""

from __future__ import annotations

from typing import Any

from maosic.config import Settings, ensure_core_token, ensure_secret_key, load_settings

DEFAULTS: dict[str, Any] = {
    "WTF_CSRF_ENABLED": True,
    "WTF_CSRF_TIME_LIMIT": None,  # tokens live as long as the session; pages stay open for hours
    "RPC_TIMEOUT_S": 30.0,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCK_S": 900,
    "LOGIN_IP_MAX_FAILURES": 30,
    "LOGIN_IP_WINDOW_S": 900,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,  # a configuration file is a few kB
    "POLL_MS": 1500,
}


def layered_config(test_config: dict[str, Any] | None, settings: Settings | None = None) -> dict:
    """The final config mapping; later layers win, ``test_config`` last."""
    settings = settings or load_settings()
    merged: dict[str, Any] = dict(DEFAULTS)
    overrides = dict(test_config or {})
    merged.update(
        {
            "DATABASE_URL": settings.resolved_database_url,
            "CORE_URL": settings.core_url,
            "HARDWARE_URL": settings.hardware_url,
            "HARDWARE_TOKEN": settings.hardware_token,
            "HARDWARE_CA_FILE": settings.hardware_ca_file,
            "HARDWARE_CLIENT_CERT": settings.hardware_client_cert,
            "LOG_KEY_FILE": str(settings.resolved_log_key_file),
            "SESSION_COOKIE_SECURE": settings.session_cookie_secure,
            "TRUSTED_PROXIES": settings.trusted_proxies,
            # notifications are sent by the core; the site says whether e-mail is on and checks
            # webhook URLs as the core will
            "SMTP_CONFIGURED": bool(settings.smtp_host),
            "WEBHOOK_ALLOW_PRIVATE": settings.webhook_allow_private,
        }
    )
    if "SECRET_KEY" not in overrides:
        merged["SECRET_KEY"] = ensure_secret_key(settings)
    if "CORE_TOKEN" not in overrides:
        merged["CORE_TOKEN"] = ensure_core_token(settings)
    merged.update(overrides)
    if merged.get("SESSION_COOKIE_SECURE"):
        merged["REMEMBER_COOKIE_SECURE"] = True
    return merged

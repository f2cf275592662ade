"""The MAOSIC web site: a Flask application factory with one blueprint per area.

``create_app(test_config)`` layers defaults -> maosic settings (defaults < instance file <
``MAOSIC_*`` environment) -> ``test_config``; see :mod:`cloud.settings` for the keys read.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from cloud.settings import layered_config


class _SessionInterface(SecureCookieSessionInterface):
    """A session cookie is Secure when the setting says so or the request came over HTTPS
    (directly, or through a trusted proxy's X-Forwarded-Proto): a browser that reached the site
    by TLS never sends its session in clear afterwards."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


class _RowId(IntegerConverter):
    """``<int:...>`` in URLs: at most a 64-bit row id. A longer number is no row ("404"), where
    it used to reach the database and overflow SQLite's integers (HTTP 500)."""

    def __init__(self, map, fixed_digits=0, min=None, max=2**63 - 1, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits, min, max, signed)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from cloud import (
        admin,
        attachments,
        auth,
        choose,
        compare,
        crates,
        explain,
        operator,
        queue_page,
        runs,
        sharing,
        submit,
    )
    from cloud.accounts import login_manager
    from cloud.assets import install_asset_versions
    from cloud.context import init_context
    from cloud.security import csrf, install_security

    app = Flask(__name__, instance_relative_config=False)
    app.url_map.converters["int"] = _RowId
    app.config.from_mapping(layered_config(test_config))
    # Keep configuration order in JSON replies (T before C, as the chemist wrote them).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.session_interface = _SessionInterface()
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:
        # Behind N proxies the client's address is N hops back in X-Forwarded-For: the login
        # rate limit then counts each client, not the proxy, and nobody can forge it further.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    init_context(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    install_security(app)
    install_asset_versions(app)
    for blueprint in (
        auth.bp,
        runs.bp,
        submit.bp,
        queue_page.bp,
        operator.bp,
        admin.bp,
        sharing.bp,
        compare.bp,
        choose.bp,
        crates.bp,
        attachments.bp,
        explain.bp,
    ):
        app.register_blueprint(blueprint)
    return app


__all__ = ["create_app"]

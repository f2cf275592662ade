"""The MAOSIC web site: a Flask application factory with one blueprint per area.

``create_app(test_config)`` layers defaults -> maosic settings (defaults < instance file <
``MAOSIC_*`` environment) -> ``test_config``; see :mod:`cloud.settings` for the keys read.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from cloud.settings import layered_config


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from cloud import admin, auth, operator, queue_page, runs, submit
    from cloud.accounts import login_manager
    from cloud.assets import install_asset_versions
    from cloud.context import init_context
    from cloud.security import csrf, install_security

    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(layered_config(test_config))
    # Keep configuration order in JSON replies (T before C, as the chemist wrote them).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    init_context(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    install_security(app)
    install_asset_versions(app)
    for blueprint in (auth.bp, runs.bp, submit.bp, queue_page.bp, operator.bp, admin.bp):
        app.register_blueprint(blueprint)
    return app


__all__ = ["create_app"]

"""Create or upgrade the schema with Alembic, so existing MySQL databases keep their rows."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from maosic.db.models import Base

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "no migrations found"
    return head


def create_or_upgrade(engine: Engine, url: str) -> str:
    """Bring the database at ``url`` to the newest schema; returns what was done, for the user.

    An empty database gets the schema from the models and is stamped at the head revision; one
    that Alembic manages is upgraded. One with our tables but no Alembic stamp (made by
    ``create_all``) is stamped at the head if it matches the models, else at the first revision
    and upgraded from there.
    """
    tables = set(inspect(engine).get_table_names())
    revision = current_revision(engine)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if not tables - {"alembic_version"}:
            Base.metadata.create_all(conn)
            command.stamp(cfg, "head")
            return "created the schema"
        if revision is None:
            revision = head_revision() if _matches_models(conn) else "0001"
            command.stamp(cfg, revision)
        if revision == head_revision():
            return "schema already up to date"
        command.upgrade(cfg, "head")
        return f"upgraded the schema from {revision} to {head_revision()}"


def _matches_models(conn) -> bool:
    """True when the tables and columns are those of the current models (no migration due)."""
    diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return not any(d[0] in ("add_table", "add_column") for d in _flatten(diffs))


def _flatten(diffs: list) -> list:
    # compare_metadata nests column modifications in lists; additions are tuples at the top.
    return [d for item in diffs for d in (item if isinstance(item, list) else [item])]

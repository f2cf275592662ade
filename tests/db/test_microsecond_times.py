"""Times keep their microseconds on MySQL/MariaDB as on SQLite (issue 20, item 12): whole
seconds were too coarse to order a run's steps. On MariaDB both the models' schema and the
migrated one are checked."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import inspect, select

from maosic.db.models import User
from maosic.db.schema import alembic_config
from maosic.db.session import make_engine, session_factory, transaction

STAMP = datetime(2026, 12, 5, 21, 9, 41, 123456)


def test_a_time_keeps_its_microseconds(sessions):
    with transaction(sessions) as session:
        session.add(User(username="t", password_hash="x", created_at=STAMP, locked_until=STAMP))
    with sessions() as session:
        user = session.scalars(select(User).where(User.username == "t")).one()
        assert user.created_at == STAMP and user.locked_until == STAMP


@pytest.mark.parametrize("empty_db_url", ["mariadb"], indirect=True)
def test_the_migrations_widen_every_time_column_on_mariadb(empty_db_url):
    engine = make_engine(empty_db_url)
    cfg = alembic_config(empty_db_url)
    with engine.begin() as conn:  # a database made before 0007 (whole seconds), then upgraded
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        command.upgrade(cfg, "head")
    try:
        found = {
            (table, column["name"]): getattr(column["type"], "fsp", None)
            for table in inspect(engine).get_table_names()
            for column in inspect(engine).get_columns(table)
            if "DATETIME" in str(column["type"]).upper()
        }
        # the 13 that 0007 widened, planned_points.created_at (0008) and
        # attachments.created_at (0009), made with fractions
        assert len(found) == 15 and set(found.values()) == {6}, found
        with transaction(session_factory(engine)) as session:
            session.add(User(username="m", password_hash="x", created_at=STAMP))
        with session_factory(engine)() as session:
            assert session.scalars(select(User)).one().created_at == STAMP
    finally:
        engine.dispose()

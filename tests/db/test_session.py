"""SQLite connection settings the closed loop relies on, and the JSON written to the database."""

from sqlalchemy import text

from maosic.db.models import Base, Reaction
from maosic.db.session import make_engine, session_factory, transaction


def test_sqlite_uses_wal_with_normal_sync_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_json_columns_are_written_compact_and_read_back_unchanged(db_url):
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    config = {"name": "x", "param": {"T": {"bound": [90.0, 180.0]}}, "values": [1.5, None, "a"]}
    with transaction(session_factory(engine)) as session:
        session.add(Reaction(name="x", config=config, config_sha256="0" * 64))
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT config FROM reactions")).scalar()
    assert ", " not in raw and '": ' not in raw
    with session_factory(engine)() as session:
        assert session.query(Reaction).one().config == config
    engine.dispose()

"""Schema creation, upgrades that keep rows, and the errors a user sees for a bad database."""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from maosic.db.schema import alembic_config, create_or_upgrade, current_revision, head_revision
from maosic.db.session import DatabaseError, check_schema, make_engine

ROOT = Path(__file__).resolve().parents[2]


def test_create_is_idempotent(empty_db_url):
    engine = make_engine(empty_db_url)
    assert create_or_upgrade(engine, empty_db_url) == "created the schema"
    assert create_or_upgrade(engine, empty_db_url) == "schema already up to date"
    assert current_revision(engine) == head_revision()
    check_schema(engine)  # raises if anything is missing
    engine.dispose()


def test_upgrade_from_first_revision_keeps_rows(empty_db_url):
    from alembic import command

    engine = make_engine(empty_db_url)
    cfg = alembic_config(empty_db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assert "stop_reason" not in {c["name"] for c in inspect(engine).get_columns("requests")}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, password_hash, role, active, failed_logins,"
                " created_at) VALUES ('old', 'x', 'user', 1, 0, '2026-01-01 00:00:00')"
            )
        )
    assert "upgraded" in create_or_upgrade(engine, empty_db_url)
    engine.dispose()
    engine = make_engine(empty_db_url)
    assert "stop_reason" in {c["name"] for c in inspect(engine).get_columns("requests")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM users")).scalars().all() == ["old"]
    engine.dispose()


def test_missing_tables_say_how_to_fix(empty_db_url):
    engine = make_engine(empty_db_url)
    with pytest.raises(DatabaseError, match="lacks the tables .*create_db.py"):
        check_schema(engine)
    engine.dispose()


def test_bad_urls_give_one_clear_line():
    with pytest.raises(DatabaseError, match="not valid"):
        make_engine("not a url")
    with pytest.raises(DatabaseError, match="cannot connect.*127.0.0.1:1.*MAOSIC_DATABASE_URL"):
        make_engine("mysql+pymysql://u:secret@127.0.0.1:1/maosic")


def test_create_db_script_twice_then_seed(empty_db_url):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "scripts/create_db.py", "--database-url", empty_db_url, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )

    first, second = run("--seed"), run("--seed")
    assert first.returncode == 0, first.stderr
    assert "created the schema" in first.stdout
    assert "demo" not in first.stdout  # examples only: a deployment gets no default passwords
    assert "CsPbBr3" in first.stdout or "cspbbr3" in first.stdout.lower()
    assert "already up to date" in second.stdout and "already present" in second.stdout


def test_create_db_script_reports_unreachable_server():
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/create_db.py",
            "--database-url",
            "mysql+pymysql://u:pw@127.0.0.1:1/x",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot connect") and "Traceback" not in proc.stderr
    assert "pw" not in proc.stderr  # the password is not echoed

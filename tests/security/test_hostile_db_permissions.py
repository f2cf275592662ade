"""The SQLite database is owner-only, like the key files next to it (issue 17, item 7).

It holds password hashes, tokens' hashes and the lab's logs: created world-readable (0644) it
could be read by any local account. The WAL and shared-memory files SQLite creates beside it
take its permissions, so they must come out 0600 too, whatever the umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from maosic.db.models import Base
from maosic.db.session import make_engine

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask: the permissions must not depend on the operator's."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_new_database_and_its_wal_files_are_owner_only(tmp_path, open_umask):
    db = tmp_path / "instance" / "maosic.sqlite3"
    engine = make_engine(f"sqlite:///{db}")
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
        files = sorted(db.parent.iterdir())
        assert {f.name for f in files} >= {db.name, db.name + "-wal", db.name + "-shm"}
        for file in files:
            assert _mode(file) == 0o600, (file.name, oct(_mode(file)))
    finally:
        engine.dispose()


def test_existing_world_readable_database_is_tightened(tmp_path):
    db = tmp_path / "maosic.sqlite3"
    first = make_engine(f"sqlite:///{db}")
    Base.metadata.create_all(first)
    first.dispose()
    db.chmod(0o644)  # as created by earlier versions
    wal = db.with_name(db.name + "-wal")
    wal.write_bytes(b"")
    wal.chmod(0o664)
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert _mode(db) == 0o600
        assert _mode(wal) == 0o600
        with engine.connect() as conn:  # still a working database
            assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 0
    finally:
        engine.dispose()


def test_memory_database_is_untouched(tmp_path):
    engine = make_engine("sqlite://")
    engine.dispose()
    engine = make_engine("sqlite:///:memory:")
    engine.dispose()


def test_certificates_folder_is_never_committed():
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "certs/" in lines
    found = subprocess.run(["git", "check-ignore", "-q", "certs/ca-key.pem"], cwd=ROOT, check=False)
    assert found.returncode == 0

"""docs/inspect_campaign.sql on a database a real campaign wrote (issue 20, item 12): the same
text runs on SQLite and on MariaDB, and its columns hold what the run page shows (a wrong
feature name or JSON path would give NULLs, which hand-written rows cannot catch)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from maosic.db.models import Feature
from maosic.db.session import make_engine
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from tests.core.campaign_helpers import start_sim_daemon, worker
from tests.core.rpc_helpers import cspbbr3_config

QUERY = Path(__file__).resolve().parents[2] / "docs" / "inspect_campaign.sql"
HEADER = ["number", "T_C", "C_mmol_mL", "status", "reward", "cd_mdeg"]


def _run_query(db_url: str) -> tuple[list[str], list[tuple]]:
    text = QUERY.read_text(encoding="utf-8")
    if db_url.startswith("sqlite"):
        # Python's sqlite3, as the sqlite3 shell would read the file: no SQLAlchemy in between.
        with sqlite3.connect(make_url(db_url).database) as db:
            cursor = db.execute(text)
            return [c[0] for c in cursor.description], cursor.fetchall()
    engine = make_engine(db_url)
    try:
        # The driver's own cursor, with no parameters: the file is sent as written, as the
        # mariadb client sends it (with parameters, PyMySQL would %-format its comments).
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(text)
            return [c[0] for c in cursor.description], list(cursor.fetchall())
        finally:
            conn.close()
    finally:
        engine.dispose()


def test_the_query_shows_a_finished_campaign(db_url, sessions, tmp_path):
    service = CoreService(sessions)
    older = service.submit(INSTALLATION, config=cspbbr3_config(), budget=1, seed=3)["id"]
    newest = service.submit(INSTALLATION, config=cspbbr3_config(), budget=3, seed=1)["id"]
    daemon = start_sim_daemon()
    try:
        w = worker(sessions, daemon, tmp_path)
        while w.run_once():
            pass
    finally:
        daemon.stop()
    status = service.status(INSTALLATION, newest, experiments=True)
    assert service.status(INSTALLATION, older)["status"] == "done"
    assert status["status"] == "done" and status["n_done"] == 3

    header, rows = _run_query(db_url)

    assert header == HEADER
    with sessions() as session:
        cd = {
            f.experiment.number: f.value
            for f in session.scalars(select(Feature).where(Feature.name == "cd_at_exciton_mdeg"))
            if f.experiment.request_id == newest
        }
    # best first, as the file says
    expected = sorted(status["experiments"], key=lambda e: (-e["reward"], e["number"]))
    assert [row[0] for row in rows] == [e["number"] for e in expected]  # the newest request only
    for row, exp in zip(rows, expected, strict=True):
        number, t, c, state, reward, cd_mdeg = row
        # JSON_EXTRACT gives numbers on SQLite and JSON text on MariaDB
        assert json.loads(str(t)) == pytest.approx(exp["params"]["T"])
        assert json.loads(str(c)) == pytest.approx(exp["params"]["C"])
        assert state == "done"
        assert float(reward) == pytest.approx(exp["reward"], abs=5e-5)
        assert cd_mdeg is not None and float(cd_mdeg) == pytest.approx(cd[number])

"""An experiment written through the models shows in the mariadb client with the README's query.

The MariaDB test exists when scripts/test.sh provides the server (it always does there).
"""

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from maosic.db.models import Experiment, ExperimentStatus, Feature, Reaction, Request
from maosic.db.session import transaction
from tests.conftest import BACKENDS

ROOT = Path(__file__).resolve().parents[2]
QUERY = ROOT / "docs" / "inspect_campaign.sql"


def _two_experiments(sessions) -> None:
    """A request with two experiments, the better one second."""
    with transaction(sessions) as session:
        reaction = Reaction(name="CsPbBr3", config={}, config_sha256="1" * 64)
        session.add(reaction)
        session.flush()
        request = Request(
            seq=1,
            reaction_id=reaction.id,
            target={"metric": "m"},
            budget=3,
            optimizer="snobfit",
        )
        session.add(request)
        session.flush()
        for number, (t, c, reward) in enumerate([(110.5, 0.4, 0.39), (130.0, 0.81, 0.98)], 1):
            exp = Experiment(
                request_id=request.id,
                number=number,
                params={"T": t, "C": c},
                status=ExperimentStatus.DONE,
                reward=reward,
                loss=-reward,
            )
            exp.features.append(Feature(name="cd_at_exciton_mdeg", value=-reward, unit="mdeg"))
            session.add(exp)


def test_readme_shows_the_query_file():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = [ln for ln in QUERY.read_text(encoding="utf-8").splitlines() if not ln.startswith("--")]
    assert "\n".join(body).strip() in readme


@pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)
def test_the_query_runs_on_the_default_sqlite_database(empty_db_url, sessions):
    """The same file on SQLite (the README's default database), through Python's sqlite3."""
    _two_experiments(sessions)
    path = make_url(empty_db_url).database
    with sqlite3.connect(path) as db:
        cursor = db.execute(QUERY.read_text(encoding="utf-8"))
        header = [c[0] for c in cursor.description]
        rows = cursor.fetchall()
    assert header == ["number", "T_C", "C_mmol_mL", "status", "reward", "cd_mdeg"]
    assert rows == [(2, 130.0, 0.81, "done", 0.98, -0.98), (1, 110.5, 0.4, "done", 0.39, -0.39)]


if "mariadb" in BACKENDS:

    @pytest.mark.parametrize("empty_db_url", ["mariadb"], indirect=True)
    def test_experiment_visible_in_mariadb_client(empty_db_url, sessions):
        _two_experiments(sessions)
        url = make_url(empty_db_url)
        client = shutil.which("mariadb") or shutil.which("mysql")
        out = subprocess.run(
            [
                client,
                "--no-defaults",
                "-h",
                url.host,
                "-P",
                str(url.port),
                "-u",
                url.username,
                f"-p{url.password}",
                "--batch",
                url.database,
            ],
            input=QUERY.read_text(encoding="utf-8"),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ},
        ).stdout.splitlines()
        assert out[0].split("\t") == ["number", "T_C", "C_mmol_mL", "status", "reward", "cd_mdeg"]
        assert out[1].split("\t") == ["2", "130.0", "0.81", "done", "0.9800", "-0.98"]
        assert out[2].split("\t")[:2] == ["1", "110.5"]

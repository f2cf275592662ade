"""The MariaDB server crashes and restarts under a running campaign: the core reconnects and the
request finishes, with no experiment lost or stored twice.

Runs where the test suite has MariaDB (scripts/test.sh always does); it starts a server of its
own so that crashing it cannot disturb tests that share the suite's server.
"""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from maosic.db.models import Base
from maosic.db.session import make_engine, session_factory
from tests.conftest import BACKENDS
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for
from tests.security.conftest import start_fast_stack
from tests.security.mariadb_server import ThrowawayMariaDB
from tests.security.test_lab_faults import check_experiments

BUDGET = 8
OUTAGE_S = 2.0

if "mariadb" in BACKENDS:

    def test_mariadb_crash_and_restart_mid_campaign(tmp_path):
        server = ThrowawayMariaDB(tmp_path / "mariadb").install().start()
        stack = None
        try:
            admin = create_engine(server.server_url)
            with admin.begin() as conn:
                conn.execute(text("CREATE DATABASE maosic CHARACTER SET utf8mb4"))
            admin.dispose()
            url = server.server_url + "maosic?charset=utf8mb4"
            engine = make_engine(url)
            Base.metadata.create_all(engine)
            engine.dispose()
            stack = start_fast_stack(url, tmp_path / "instance")
            sub = rpc(stack.core_url, "request.submit", config=cspbbr3_config(), budget=BUDGET)
            while (before := rpc(stack.core_url, "request.status", id=sub["id"]))["n_done"] < 2:
                time.sleep(0.02)
            server.crash()
            assert before["status"] == "running" and before["n_done"] < BUDGET, before
            time.sleep(OUTAGE_S)  # the worker keeps going and meets the dead server
            server.start()
            final = wait_for(stack.core_url, sub["id"], {"done", "failed"}, timeout_s=180)
            assert final["status"] == "done", final
            engine = make_engine(url)
            check_experiments(session_factory(engine), sub["id"], BUDGET)
            with engine.connect() as conn:
                n = conn.execute(text("SELECT COUNT(*) FROM requests")).scalar()
            engine.dispose()
            assert n == 1
        finally:
            if stack is not None:
                stack.core.stop()
                stack.daemon.stop()
            server.stop()

"""A core frozen inside a write transaction must not hold the lab's queue for ever (MariaDB).

The frozen process keeps its TCP connection, so the server keeps its transaction and its row
locks: without a limit, no other core could take the request over for as long as the freeze
lasts. maosic.db.session asks MariaDB to end a write transaction idle for 15 s; this test
freezes a real process right after it wrote under its fence, on a MariaDB server of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from sqlalchemy import create_engine, text, update

from maosic.db.models import Base, Reaction, Request, RequestStatus
from maosic.db.session import IDLE_WRITE_TRANSACTION_TIMEOUT_S, make_engine, session_factory
from tests.security.mariadb_server import ThrowawayMariaDB

FROZEN_CORE = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import update
    from maosic.db.models import Request
    from maosic.db.session import make_engine, session_factory
    sessions = session_factory(make_engine(sys.argv[1]))
    with sessions() as session:
        session.execute(update(Request).where(Request.id == 1).values(worker="core-a"))
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # frozen here, the transaction open
        try:
            session.commit()
            print("committed", flush=True)
        except Exception as exc:
            print("commit failed:", type(exc).__name__, flush=True)
    """
)


def test_a_frozen_write_transaction_is_ended_by_the_server(tmp_path):
    server = ThrowawayMariaDB(tmp_path / "mariadb").install().start()
    frozen = None
    try:
        admin = create_engine(server.server_url)
        with admin.begin() as conn:
            conn.execute(text("CREATE DATABASE frozen CHARACTER SET utf8mb4"))
        admin.dispose()
        url = server.server_url.rstrip("/") + "/frozen?charset=utf8mb4"
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            reaction = Reaction(name="r", config={}, config_sha256="0" * 64)
            session.add(reaction)
            session.flush()
            session.add(
                Request(
                    id=1,
                    seq=1,
                    reaction_id=reaction.id,
                    target={},
                    budget=1,
                    optimizer="snobfit",
                    status=RequestStatus.RUNNING,
                )  # fmt: skip
            )
            session.commit()
        frozen = subprocess.Popen(
            [sys.executable, "-c", FROZEN_CORE, url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        )
        assert frozen.stdout.readline().strip() == "written"
        _wait_stopped(frozen.pid)
        started = time.monotonic()
        with sessions() as session:  # the takeover's write: waits for the frozen one's lock
            session.execute(update(Request).where(Request.id == 1).values(worker="core-b"))
            session.commit()
        waited = time.monotonic() - started
        os.kill(frozen.pid, signal.SIGCONT)
        said = frozen.stdout.readline().strip()
        frozen.wait(30)
        with sessions() as session:
            worker = session.get(Request, 1).worker
        engine.dispose()
    finally:
        if frozen is not None and frozen.poll() is None:
            frozen.kill()
        server.stop()
    # ended by the server after its limit, well before InnoDB's 50 s lock wait would give up
    assert IDLE_WRITE_TRANSACTION_TIMEOUT_S - 1 <= waited < IDLE_WRITE_TRANSACTION_TIMEOUT_S + 10
    assert said.startswith("commit failed"), said  # the frozen core's write did not land
    assert worker == "core-b"


def _wait_stopped(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            if stat.read().split(") ", 1)[1].startswith("T"):
                return
        time.sleep(0.02)
    raise AssertionError("the frozen core did not stop")

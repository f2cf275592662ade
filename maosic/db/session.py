"""Engine and sessions, with errors a user can act on instead of driver tracebacks."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from maosic.db.models import Base

log = logging.getLogger(__name__)
T = TypeVar("T")
CREATE_HINT = "run `python scripts/create_db.py` to create it"


class DatabaseError(RuntimeError):
    """The database is unusable; the message says which URL and how to fix it."""


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine for ``url`` (SQLite file or ``mysql+pymysql://``) and check it answers."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"database URL {url!r} is not valid; expected e.g. sqlite:///instance/maosic.sqlite3 "
            "or mysql+pymysql://user:password@host:3306/maosic"
        ) from exc
    # A pre-ping finds server connections that MySQL/MariaDB dropped (wait_timeout, restart); a
    # SQLite file has no server to lose, so there it would only add a query per checkout.
    sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict = {"echo": echo, "pool_pre_ping": not sqlite, "json_serializer": _compact_json}
    if sqlite:
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            if not parsed.query.get("uri"):
                _private_sqlite_file(Path(parsed.database))
        # The web site, the core's handler and its worker share the file from several threads.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        # MySQL closes idle connections after wait_timeout; recycle before that and after restarts.
        kwargs["pool_recycle"] = 1800
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"no driver for database URL {_redact(url)}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "connect", _mysql_session)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip() if exc.orig else str(exc)
        raise DatabaseError(
            f"cannot connect to the database {_redact(url)}: {reason}. Check that the server runs "
            "and that MAOSIC_DATABASE_URL names the right host, port, user and database."
        ) from exc
    return engine


# A process frozen (SIGSTOP, a suspended VM) inside a write transaction keeps its row locks for
# as long as it is frozen: the request row it fenced stays locked and no other core can take the
# request over. MariaDB ends such a transaction after this many idle seconds (the frozen core's
# commit then fails and its retry finds the claim gone). No transaction of ours idles even a
# second; MySQL has no such variable, and there the setting is left out.
IDLE_WRITE_TRANSACTION_TIMEOUT_S = 15


def _mysql_session(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(
            "SET SESSION idle_write_transaction_timeout = %s", (IDLE_WRITE_TRANSACTION_TIMEOUT_S,)
        )
    except Exception as exc:  # noqa: BLE001 - unknown variable on MySQL: nothing to set
        log.debug("idle_write_transaction_timeout not set: %s", exc)
    finally:
        cursor.close()


# The database holds users' password hashes and the lab's logs: owner-only, like the key files.
PRIVATE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does (it would use 0644 less the
    umask), and take group/other access away from an existing one and its side files.

    SQLite gives the -wal, -shm and -journal files it creates the database file's permissions,
    so they follow. A file this process may not change is left alone with a warning.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        log.warning("cannot create the database file %s owner-only: %s", path, exc)
        return
    else:
        os.close(fd)  # an empty file is an empty SQLite database
    for file in [path, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)]:
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)
                log.warning("%s was readable by others (mode %o); now %o", file, mode, mode & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot make %s owner-only: %s", file, exc)


def _compact_json(value: object) -> str:
    # No spaces after separators: the spectra and the optimizer state written with every
    # experiment are ~15 % smaller, and encoding them ~10 % quicker.
    return json.dumps(value, separators=(",", ":"))


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets the web pages read while the worker writes; SQLite leaves foreign keys off.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives a crash
    # or kill -9 of any process; only a power cut or OS crash may undo the last few commits,
    # never corrupt the file. The campaign stores an experiment and the optimizer state that
    # knows it in one transaction, so an undone commit is an experiment redone, not one lost
    # silently. FULL cost an fsync per commit: ~6 ms of each experiment's two commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def missing_tables(engine: Engine) -> list[str]:
    present = set(inspect(engine).get_table_names())
    return sorted(name for name in Base.metadata.tables if name not in present)


def check_schema(engine: Engine) -> None:
    """Raise :class:`DatabaseError` naming the missing tables, if any."""
    missing = missing_tables(engine)
    if missing:
        raise DatabaseError(
            f"the database {_redact(str(engine.url))} lacks the tables {', '.join(missing)}; "
            + CREATE_HINT
        )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


# MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout; both roll the transaction back and ask
# the client to run it again. SQLite: "database is locked" after the busy timeout.
_RETRYABLE_MYSQL = {1213, 1205}


def _retryable(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "args", [None])[0]
    return code in _RETRYABLE_MYSQL or "database is locked" in str(exc.orig)


_WRITER_LOCKS: dict[str, threading.Lock] = {}


def _sqlite_writer_lock(factory: sessionmaker[Session]) -> threading.Lock | nullcontext:
    """One writer at a time per SQLite file within this process.

    SQLite allows one writer; threads that collide otherwise wait in its busy handler, which
    polls with growing sleeps and gave submissions a p99 of 1.6 s under load. A lock queues
    them fairly instead. Other processes are still covered by the busy timeout.
    """
    bind = factory.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return nullcontext()
    return _WRITER_LOCKS.setdefault(str(bind.url), threading.Lock())


def run_transaction(
    factory: sessionmaker[Session],
    work: Callable[[Session], T],
    attempts: int = 5,
    base_delay_s: float = 0.05,
    retry_disconnects: bool = False,
) -> T:
    """Run ``work(session)`` in one transaction, again if the database asks for a retry.

    With ``retry_disconnects`` a lost connection (server restarting) is retried too, with
    exponential backoff; the pool's pre-ping then opens a fresh connection.
    """
    writer_lock = _sqlite_writer_lock(factory)
    for attempt in range(attempts):
        try:
            with writer_lock, transaction(factory) as session:
                return work(session)
        except OperationalError as exc:
            if attempt == attempts - 1 or not (_retryable(exc) or retry_disconnects):
                raise
            delay = base_delay_s * 2**attempt
            log.warning("database asked for a retry (%s); again in %.2f s", exc.orig, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")

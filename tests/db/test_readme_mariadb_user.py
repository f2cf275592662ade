"""The README's MariaDB account logs in on a fresh ``mariadb-install-db`` server (issue 20, item
12): there the anonymous accounts ``''@'localhost'`` match a local connection more closely than
``'maosic'@'%'`` and win (ERROR 1045), so the README makes the user for localhost too.

Runs against the throwaway server of scripts/test.sh, which is made by ``mariadb-install-db``
and lets root in over its socket; the README's statements are run as written, under another
user and database name.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BACKENDS, MYSQL_URL

ROOT = Path(__file__).resolve().parents[2]
SOCKET = os.environ.get("MAOSIC_TEST_MYSQL_SOCKET", "")

pytestmark = pytest.mark.skipif(
    "mariadb" not in BACKENDS or not SOCKET, reason="needs scripts/test.sh's MariaDB server"
)


def readme_statements() -> list[str]:
    """The statements of the README's ``mariadb -u root -e "..."`` setup line."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### MySQL or MariaDB", 1)[1].split("\n#", 1)[0]
    found = re.search(r'mariadb -u root -e "(.*?)"', section, re.DOTALL)
    assert found, "no `mariadb -u root -e` line in the README's MariaDB section"
    return [" ".join(s.split()) for s in found.group(1).split(";") if s.strip()]


def as_root() -> pymysql.connections.Connection:
    return pymysql.connect(unix_socket=SOCKET, user="root", autocommit=True)


def log_in(name: str, **where: object) -> str:
    """Log in as ``name`` (password 'secret', the README's) and say who the server took us for."""
    with pymysql.connect(user=name, password="secret", database=name, **where) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            return cur.fetchone()[0]


@pytest.fixture
def name() -> Iterator[str]:
    """A user and database name of this test's own, dropped afterwards."""
    name = f"readme_{uuid.uuid4().hex[:8]}"
    yield name
    with as_root() as root, root.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(f"DROP USER IF EXISTS '{name}'@'{host}'")
        cur.execute(f"DROP DATABASE IF EXISTS {name}")


def test_the_readme_user_logs_in_locally_over_the_socket_and_tcp(name):
    with as_root() as root, root.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = ''")
        anonymous = cur.fetchone()[0]
        for statement in readme_statements():
            cur.execute(re.sub(r"\bmaosic\b", name, statement))
    # The precondition the README's note is about: without it this test would prove nothing.
    assert anonymous > 0, "this server has no anonymous accounts"
    port = make_url(MYSQL_URL).port
    assert log_in(name, unix_socket=SOCKET) == f"{name}@localhost"
    # The README's URL: TCP to 127.0.0.1, which the server names localhost too.
    assert log_in(name, host="127.0.0.1", port=port) == f"{name}@localhost"


def test_a_user_made_for_any_host_only_is_refused_locally(name):
    """Why the README makes the localhost user: the anonymous accounts win without it."""
    with as_root() as root, root.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'secret'")
        cur.execute(f"GRANT ALL ON {name}.* TO '{name}'@'%'")
    with pytest.raises(pymysql.err.OperationalError) as refused:
        log_in(name, unix_socket=SOCKET)
    assert refused.value.args[0] == 1045

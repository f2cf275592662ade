"""Starting data: the example reactions of ``examples/``, and demo accounts where asked for.

The example reactions are public and safe to add to any database. The demo accounts (one per
role, with the passwords README.md prints) are a demo's convenience only: they are created once,
on a database that has no account at all, and never again, so renaming, deactivating or
re-passwording ``admin`` sticks across restarts. A deployment makes its first admin with
``scripts/create_db.py --create-admin NAME`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maosic.db.models import Role, User
from maosic.db.repository import get_or_create_reaction, get_or_create_user, upsert_reagents
from maosic.db.session import make_engine, session_factory, transaction
from maosic.language.config import load_config
from maosic.language.errors import LanguageError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_USERS = (
    ("demo", "demo-password", Role.USER),
    ("operator", "operator-password", Role.OPERATOR),
    ("admin", "admin-password", Role.ADMIN),
)
FIRST_ADMIN_HINT = (
    "no user accounts yet: create the first admin with "
    "`.venv/bin/python scripts/create_db.py --create-admin NAME` (it asks for the password)"
)


def seed(url: str) -> list[str]:
    """Example reactions and, on a database without accounts, the demo accounts (tests, demos)."""
    return seed_examples(url) + seed_demo_users(url)


def seed_examples(url: str) -> list[str]:
    """Add the example reactions and their reagents that are not there yet."""
    done = []
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        for path in sorted(EXAMPLES.glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            try:
                config = load_config(raw).to_dict()
            except LanguageError:
                continue  # not a reaction configuration (e.g. a lab file)
            # Stored in the normalised form, as request.submit stores it, so that requests
            # for the same reaction share one row and its history.
            reaction, created = get_or_create_reaction(session, config)
            if created:
                done.append(f"reaction {reaction.name!r} from {path.name}")
            added = upsert_reagents(session, list(raw.get("reagent", [])))
            if added:
                done.append(f"{added} reagents from {path.name}")
    engine.dispose()
    return done


def seed_demo_users(url: str) -> list[str]:
    """The demo accounts, only on a database that has no account at all (so once)."""
    done = []
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        if not count_users(session):
            for name, password, role in DEMO_USERS:
                _, created = get_or_create_user(session, name, password, role)
                if created:
                    done.append(f"demo user {name!r} ({role.value})")
    engine.dispose()
    return done


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def create_admin(url: str, username: str, password: str) -> None:
    """Add an admin account; ValueError when the name is taken or the password too short."""
    engine = make_engine(url)
    try:
        with transaction(session_factory(engine)) as session:
            _, created = get_or_create_user(session, username, password, Role.ADMIN)
            if not created:
                raise ValueError(f"an account named {username!r} exists already")
    finally:
        engine.dispose()

"""Demo data: three accounts (one per role) and the example reactions of ``examples/``."""

from __future__ import annotations

import json
from pathlib import Path

from maosic.db.models import Role
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


def seed(url: str) -> list[str]:
    """Add the demo accounts and the example reactions that are not there yet."""
    done = []
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        for name, password, role in DEMO_USERS:
            _, created = get_or_create_user(session, name, password, role)
            if created:
                done.append(f"user {name!r} ({role.value}, password {password!r})")
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

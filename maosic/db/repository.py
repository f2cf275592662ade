"""Small queries and inserts shared by the core, the web site and the scripts."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maosic.db.models import Reaction, Reagent, Role, User
from maosic.db.passwords import hash_password


def config_digest(config: dict[str, Any]) -> str:
    """Digest of a configuration's canonical JSON: equal digest = same reaction and space."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def get_or_create_reaction(
    session: Session,
    config: dict[str, Any],
    formula: str | None = None,
    owner_id: int | None = None,
) -> tuple[Reaction, bool]:
    """The stored reaction with this exact configuration, or a new one; and whether it is new."""
    digest = config_digest(config)
    found = session.scalars(
        select(Reaction).where(Reaction.config_sha256 == digest).order_by(Reaction.id)
    ).first()
    if found is not None:
        return found, False
    reaction = Reaction(
        name=str(config.get("name") or "unnamed reaction"),
        description=config.get("description"),
        formula=formula or config.get("formula"),
        config=config,
        config_sha256=digest,
        owner_id=owner_id,
    )
    session.add(reaction)
    session.flush()
    return reaction, True


def get_or_create_user(
    session: Session, username: str, password: str, role: Role = Role.USER, email: str | None = None
) -> tuple[User, bool]:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is not None:
        return user, False
    user = User(username=username, password_hash=hash_password(password), role=role, email=email)
    session.add(user)
    session.flush()
    return user, True


def upsert_reagents(session: Session, reagents: list[dict[str, Any]]) -> int:
    """Insert the configuration's reagents that the table lacks (by name); returns how many."""
    added = 0
    for position, item in enumerate(reagents, start=1):
        name = str(item.get("name") or item.get("formula") or f"R{position}")
        if session.scalars(select(Reagent).where(Reagent.name == name)).first() is not None:
            continue
        session.add(
            Reagent(
                name=name,
                reagent_index=int(item.get("index", position)),
                state=str(item.get("state", "liquid")),
                formula=item.get("formula"),
                concentration_mmol_ml=item.get("concentration_mmol_mL"),
                stock_volume_ml=item.get("stock_mL"),
                stock_mass_g=item.get("stock_g"),
            )
        )
        added += 1
    session.flush()
    return added

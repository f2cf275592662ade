"""More than one lab: registered daemons, and routing a request to a lab that can run it.

Each lab has its own worker and its own FIFO order (requests of one lab never wait behind
another lab's). A request goes to a lab that has every module and stock reagent its compiled
program uses; among those, the one with the fewest active requests. A lab whose daemon has not
answered yet (modules unknown) is not excluded: the resource check at start says what is missing.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maosic.db.models import ACTIVE_STATUSES, Lab, Request, utcnow
from maosic.db.session import run_transaction
from maosic.hardware import HardwareClient, HardwareError, HardwareLost, HardwareUnreachable
from maosic.resources import stock_by_name

log = logging.getLogger(__name__)


class NoLabFits(LookupError):
    """No registered lab has what the reaction needs; the message lists what is missing."""


def parse_labs(spec: str, default_url: str) -> dict[str, str]:
    """``"a=http://pc1:8888/,b=http://pc2:8888/"`` -> {name: url}; empty: one lab 'default'."""
    if not spec.strip():
        return {"default": default_url}
    labs: dict[str, str] = {}
    for item in spec.split(","):
        name, sep, url = item.strip().partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ValueError(f"setting 'labs': {item!r} is not NAME=URL")
        labs[name.strip()] = url.strip()
    return labs


def describe_lab(url: str, client_args: dict) -> tuple[list[str], list[str]] | None:
    """(module ids, stock reagent names and their aliases) the daemon reports, or None when it
    does not answer."""
    described = lab_description(url, client_args)
    if described is None:
        return None
    return sorted(described.get("modules", {})), sorted(stock_by_name(described))


DESCRIBE_TIMEOUT_S = 5.0  # a submission waits at most this long (s) for the lab's description


def lab_description(
    url: str, client_args: dict, timeout_s: float = DESCRIBE_TIMEOUT_S
) -> dict | None:
    """The daemon's ``system.describe`` (modules, limits, stock), or None when it does not
    answer within ``timeout_s`` seconds."""
    client = HardwareClient(url, retries=0, timeout_s=timeout_s, **client_args)
    try:
        described = client.call("system.describe")
    except (HardwareUnreachable, HardwareLost, HardwareError) as exc:
        log.warning("lab at %s does not describe itself: %s", url, exc)
        return None
    finally:
        client.close()
    return described if isinstance(described, dict) else None


def register_labs(
    sessions: sessionmaker[Session], labs: dict[str, str], client_args: dict | None = None
) -> dict[str, int]:
    """Store or update the labs and what they offer; returns {name: lab id}."""
    found = {name: describe_lab(url, client_args or {}) for name, url in labs.items()}

    def write(session: Session) -> dict[str, int]:
        ids = {}
        for name, url in labs.items():
            lab = session.scalars(select(Lab).where(Lab.name == name)).first()
            if lab is None:
                lab = Lab(name=name, url=url, modules=[])
                session.add(lab)
            lab.url, lab.enabled = url, True
            if found[name] is not None:
                modules, reagents = found[name]
                lab.modules = [*modules, *(f"reagent:{r}" for r in reagents)]
                lab.last_seen_at = utcnow()
            session.flush()
            ids[name] = lab.id
        return ids

    return run_transaction(sessions, write)


def route(session: Session, modules: set[str], reagents: set[str]) -> int | None:
    """The lab a new request should go to, or None when no lab is registered at all."""
    labs = list(session.scalars(select(Lab).where(Lab.enabled.is_(True)).order_by(Lab.id)))
    if not labs:
        return None
    need = modules | {f"reagent:{r}" for r in reagents}
    fitting, missing = [], {}
    for lab in labs:
        offers = set(lab.modules or [])
        lacks = need - offers if offers else set()  # unknown offer: not excluded
        if lacks:
            missing[lab.name] = sorted(lacks)
        else:
            fitting.append(lab)
    if not fitting:
        detail = "; ".join(f"{name} lacks {', '.join(m)}" for name, m in missing.items())
        raise NoLabFits(f"no lab can run this reaction: {detail}")
    load = dict(
        session.execute(
            select(Request.lab_id, func.count())
            .where(Request.status.in_(ACTIVE_STATUSES))
            .group_by(Request.lab_id)
        ).all()
    )
    return min(fitting, key=lambda lab: (load.get(lab.id, 0), lab.id)).id

"""An operator's hold on the lab: the daemon's lease, taken, renewed and given back by the web site.

The daemon grants its lab to one holder at a time (``hardware_interface/lease.py``): a campaign's
worker, or an operator driving it by hand as ``operator:<username>``. The epoch an operator was
granted is kept in their (signed) Flask session, keyed to the daemon's URL and lab, so it
survives between pages and web worker processes and goes with the operator's login; it is sent
with every manual command (``X-MAOSIC-Lease``), after renewing the lease for another
:data:`MANUAL_TTL_S`. The daemon, not this module, decides: a stale epoch is refused there
(LEASE_LOST) whatever the session believes, and the session forgets it then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import session

from cloud.rpc_client import RpcCaller

SESSION_KEY = "lab_lease"
HOLDER_PREFIX = "operator:"
# How long a manual hold lasts without a command (s): long enough to read a gauge and think,
# short enough that a forgotten hold frees the lab for the queue within minutes.
MANUAL_TTL_S = 600.0


def holder_for(username: str) -> str:
    """The lease holder name of an operator's manual session."""
    return f"{HOLDER_PREFIX}{username}"


def is_operator(holder: str | None) -> bool:
    return bool(holder) and str(holder).startswith(HOLDER_PREFIX)


@dataclass(frozen=True)
class Grant:
    """The lease an operator holds, as remembered in their session."""

    epoch: int
    holder: str
    url: str  # the daemon it was granted by: another daemon's epoch means nothing
    lab_uid: str | None


def remembered(url: str) -> Grant | None:
    """The grant in this session for the daemon at ``url``, if any."""
    saved = session.get(SESSION_KEY)
    if not isinstance(saved, dict) or saved.get("url") != url:
        return None
    try:
        return Grant(int(saved["epoch"]), str(saved["holder"]), url, saved.get("lab_uid"))
    except (KeyError, TypeError, ValueError):
        return None


def remember(grant: Grant) -> None:
    session[SESSION_KEY] = {
        "epoch": grant.epoch,
        "holder": grant.holder,
        "url": grant.url,
        "lab_uid": grant.lab_uid,
    }


def forget() -> None:
    session.pop(SESSION_KEY, None)


class LeaseGone(RuntimeError):
    """The epoch remembered is current at the daemon but not this operator's hold: the URL now
    reaches another lab (a new journal counts epochs anew), or another holder got that epoch."""


def renew(hardware: RpcCaller, grant: Grant) -> dict[str, Any]:
    """Extend the grant by MANUAL_TTL_S from now. RpcFailure LEASE_LOST if it was taken over;
    LeaseGone if the daemon's current lease under that epoch is not this grant."""
    renewed = hardware.call("lease.renew", epoch=grant.epoch, ttl_s=MANUAL_TTL_S)
    lab_uid = renewed.get("lab_uid")
    if renewed.get("holder") != grant.holder or (grant.lab_uid and lab_uid != grant.lab_uid):
        raise LeaseGone(
            f"lease epoch {grant.epoch} at {grant.url} is held by {renewed.get('holder')} "
            f"(lab {lab_uid}), not by your hold of lab {grant.lab_uid}: take the lab again"
        )
    return renewed


def view(status: dict[str, Any] | None, username: str, url: str) -> dict[str, Any] | None:
    """The lease panel's data: the daemon's ``lease.status`` and whether it is this operator's.

    Read-only: the page polls this while it takes or gives back the lab, and a poll answered
    after a take must not overwrite the session the take just wrote. A stale grant is forgotten
    when it is next used (the daemon refuses it) or replaced by the next take.
    """
    if status is None:
        return None
    me = holder_for(username)
    grant = remembered(url)
    mine = (
        grant is not None
        and status.get("holder") == me
        and int(status.get("epoch") or 0) == grant.epoch
        and (not grant.lab_uid or status.get("lab_uid") == grant.lab_uid)
    )
    return {
        "holder": status.get("holder"),
        "epoch": status.get("epoch"),
        "expires_in_s": status.get("expires_in_s"),
        "lab_uid": status.get("lab_uid"),
        "me": me,
        "mine": mine,
        "holder_is_operator": is_operator(status.get("holder")),
    }

"""``lease``: see who holds the lab, take it, give it back (the daemon's lab lease).

The daemon grants its lab to one holder at a time: a campaign's worker, or an operator driving
it by hand. ``lease take`` takes it as ``operator:<user>`` (``--holder`` to name it otherwise)
for ``--ttl`` seconds and saves the epoch it was granted (:mod:`user_control.lease_state`);
every later command that moves the lab carries that epoch and renews the lease for the same
time, until ``lease release`` gives the lab back. ``--take`` pre-empts the holder (a campaign
then pauses without counting its experiment and resumes once the lab is free again).
"""

from __future__ import annotations

import argparse
import getpass
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hardware_interface.errors import LEASE_HELD
from user_control import lease_state
from user_control.context import Context
from user_control.errors import EXIT_OK, Refused
from user_control.units import with_unit

HOLDER_PREFIX = "operator:"  # as the web site names an operator's manual hold
DEFAULT_TTL_S = 600.0  # a manual hold: minutes between commands, not seconds


def default_holder(ctx: Context) -> str:
    """``operator:<user>``: the core account if set, else the login name of this terminal."""
    name = ctx.settings.user
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # no login name in a bare container
            name = "terminal"
    return HOLDER_PREFIX + name


def describe(status: dict[str, Any], saved: lease_state.SavedLease | None) -> list[str]:
    """One line on the holder and time left, one on the saved lease if there is one."""
    holder, epoch = status.get("holder"), status.get("epoch")
    if holder:
        left = with_unit(status.get("expires_in_s"), "s", 0)
        lines = [f"lab leased to {holder} (epoch {epoch}), {left} left"]
    else:
        lines = [f"lab free (last epoch {epoch})"]
    if saved is not None:
        current = holder == saved.holder and epoch == saved.epoch
        state = "held" if current else "no longer current"
        lines.append(f"saved lease: epoch {saved.epoch} as {saved.holder} ({state})")
    return lines


def _path(ctx: Context) -> Path:
    return Path(ctx.settings.lease_file)


def cmd_lease(ctx: Context, args: argparse.Namespace) -> int:
    """``lease [status] | take [--take] [--ttl S] [--holder NAME] | release``."""
    url = ctx.settings.hardware_url
    # lease.* are open methods: called on the endpoint itself, outside ctx.hardware's renewal.
    daemon = ctx.endpoint("hardware")
    action = args.action or "status"
    if action == "status":
        status = daemon.call("lease.status")
        saved = ctx.saved_lease()
        ctx.emit({**status, "saved": asdict(saved) if saved else None}, describe(status, saved))
        return EXIT_OK
    if action == "release":
        saved = ctx.saved_lease()
        if saved is None:
            raise Refused(f"you hold no saved lease of the lab at {url} (see `lease`)")
        try:
            result = daemon.call("lease.release", epoch=saved.epoch)
        finally:
            lease_state.drop(_path(ctx), url)
        if result.get("released"):
            lines = [f"lab given back (epoch {saved.epoch})"]
        else:
            lines = [f"epoch {saved.epoch} was no longer current: nothing to give back"]
        ctx.emit(result, lines)
        return EXIT_OK
    holder = args.holder or default_holder(ctx)
    try:
        granted = daemon.call("lease.acquire", holder=holder, ttl_s=args.ttl, take=args.take)
    except Refused as exc:
        if exc.code != LEASE_HELD:
            raise
        # The daemon's message names the holder and how long its lease lasts.
        raise Refused(
            f"{exc.message}; `lease take --take` pre-empts it (a campaign pauses)",
            exc.code,
            exc.data,
        ) from None
    lease = lease_state.SavedLease(
        int(granted["epoch"]), holder, float(args.ttl), granted.get("lab_uid")
    )
    lease_state.save(_path(ctx), url, lease)
    lines = [
        f"you hold the lab as {holder} (epoch {lease.epoch}) for "
        f"{with_unit(granted.get('expires_in_s'), 's', 0)}, renewed with each command; "
        "`lease release` gives it back"
    ]
    if granted.get("took_over"):
        lines.append(f"taken over from {granted['took_over']}")
    lines += [f"recovery: {sentence}" for sentence in granted.get("recovered") or []]
    ctx.emit(granted, lines)
    return EXIT_OK

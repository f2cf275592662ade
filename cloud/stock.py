"""The run page's low-stock warning: will the lab's stock bottles last the rest of the request?

What one experiment draws of each reagent is what the core's resource check uses
(``maosic.resources.check_fit``): the program's ``reagent_volumes`` at the configuration's
defaults, compiled by ``maosic.language``. The stock is the daemon's ledger
(``reagent.stock``), read at most every :data:`STOCK_TTL_S` for the whole site: the run page
polls, and many people may watch many runs. When the daemon cannot be asked, the answer is
"unknown", never an error: the page must keep working without the lab.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from cloud.context import payload_cache, web
from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic.db.models import Reaction, Request
from maosic.language.compiler import compile_config
from maosic.language.config import load_config
from maosic.language.errors import LanguageError
from maosic.resources import experiments_covered, stock_by_name

STOCK_TTL_S = 5.0  # how long one answer of reagent.stock serves every page (s)


@dataclass(frozen=True)
class Shortfall:
    """A reagent whose stock does not cover the request's remaining experiments."""

    reagent: str
    stock_mL: float
    per_experiment_mL: float
    remaining: int  # experiments the request may still run
    covers: int  # how many of them the stock still covers

    @property
    def needed_mL(self) -> float:
        return self.per_experiment_mL * self.remaining

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "needed_mL": round(self.needed_mL, 3)}


def reagent_needs(reaction: Reaction) -> dict[str, float]:
    """mL of each stock reagent one experiment of ``reaction`` draws; {} if it does not compile.

    Cached per reaction row and configuration digest: a reaction's configuration never changes,
    and compiling it on every poll of every run page would cost more than the page."""
    key = ("reagent-needs", reaction.id, reaction.config_sha256)
    cached = payload_cache().get(key)
    if cached is not None:
        return cached
    try:
        config = load_config(reaction.config)
        needs = compile_config(config).reagent_volumes(config.defaults())
    except LanguageError:
        needs = {}  # the core refuses such a request anyway; nothing to warn about
    payload_cache().put(key, needs)
    return needs


def shortfalls(needs: dict[str, float], stock: dict[str, float], remaining: int) -> list[Shortfall]:
    """The reagents whose ``stock`` (mL) covers fewer than ``remaining`` experiments, by name.

    A reagent the lab has no bottle of is left out: the core fails such a request at its start
    with its own reason, which the page shows."""
    out = []
    for reagent, per_run in sorted(needs.items()):
        have = stock.get(reagent)
        if have is None or remaining <= 0:
            continue
        covers = experiments_covered(have, per_run)
        if covers < remaining:
            out.append(Shortfall(reagent, round(have, 3), per_run, remaining, covers))
    return out


def lab_stock() -> dict[str, float] | None:
    """The daemon's stock ledger {reagent: mL}, at most STOCK_TTL_S old; None if unknown."""
    cache = web().stock_cache
    if cache and time.monotonic() - cache["at"] < STOCK_TTL_S:
        return cache["value"]
    try:
        ledger = web().hardware.call("reagent.stock")
        # Under every name the bottle answers to: a reaction may name it by an alias.
        value: dict[str, float] | None = {
            name: float(ml)
            for name, ml in stock_by_name({"reagents": ledger or {}}).items()
            if ml is not None
        }
    except (RpcFailure, RpcUnavailable, TypeError, ValueError, AttributeError):
        value = None  # remembered too: a dead daemon must not slow every poll down
    cache.update(at=time.monotonic(), value=value)
    return value


def _same_daemon(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, (pa.hostname or "").lower(), pa.port) == (
        pb.scheme,
        (pb.hostname or "").lower(),
        pb.port,
    )


def stock_report(request: Request, n_done: int) -> dict[str, Any]:
    """What the run page shows about stock: {"known", "warnings": [Shortfall dicts]}.

    Only the web site's daemon is asked: a request routed to another lab reports "unknown"."""
    remaining = max(request.budget - n_done, 0)
    lab = request.lab
    if lab is not None and not _same_daemon(lab.url, web().hardware.url):
        return {"known": False, "remaining": remaining, "warnings": []}
    stock = lab_stock()
    if stock is None:
        return {"known": False, "remaining": remaining, "warnings": []}
    found = shortfalls(reagent_needs(request.reaction), stock, remaining)
    return {"known": True, "remaining": remaining, "warnings": [s.as_dict() for s in found]}

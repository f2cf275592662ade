"""CHECK_RESOURCES: can this lab run this reaction for this budget right now?"""

from __future__ import annotations

import itertools
from typing import Any

from maosic.hardware import HardwareClient
from maosic.language.compiler import Program
from maosic.language.config import ReactionConfig
from maosic.language.errors import LanguageError


class ResourceProblem(RuntimeError):
    """The lab cannot run this request: a module is missing, a reagent runs short or the search
    space reaches past a limit. ``field`` is the request's part to change ("budget", "config")."""

    def __init__(self, message: str, field: str = "config"):
        super().__init__(message)
        self.field = field


class LabNotReady(RuntimeError):
    """A module the reaction needs is in fault or offline now; an operator can put it right."""


def check_resources(
    client: HardwareClient, program: Program, config: ReactionConfig, budget: int
) -> dict[str, Any]:
    """Raise :class:`ResourceProblem` (fail the request) or :class:`LabNotReady` (pause it until
    the lab is put right) with a reason a user understands; return the lab's description."""
    described = client.call("system.describe")
    status = client.call("system.status")
    check_fit(described, program, config, budget)
    states = status.get("modules", {})
    faulty = {
        m: states[m].get("fault") or states[m].get("state")
        for m in sorted(program.modules_used())
        if states.get(m, {}).get("state") in ("fault", "offline")
    }
    if faulty:
        detail = "; ".join(f"{m}: {why}" for m, why in faulty.items())
        raise LabNotReady(f"modules the reaction needs are not healthy: {detail}")
    return described


# Volumes come rounded to 12 digits from the compiler: stock is compared with a relative
# margin, or 300 x 1/15 mL would not fit in 20 mL.
ROUNDING_MARGIN = 1e-9
ALWAYS_COVERED = 2**31  # a reagent an experiment does not draw: any stock covers any number


def experiments_covered(stock_mL: float, per_experiment_mL: float) -> int:
    """Whole experiments ``stock_mL`` covers at ``per_experiment_mL`` each: the one count the
    submission check, the start of a campaign and the run page's low-stock warning share."""
    if per_experiment_mL <= 0:
        return ALWAYS_COVERED
    return int(max(stock_mL, 0.0) / per_experiment_mL * (1 + ROUNDING_MARGIN))


def stock_by_name(described: dict) -> dict[str, float | None]:
    """Stock (mL) under every name the lab answers to: each bottle's own and its aliases (the
    paper's "Cs-Precursor" for the bottle of Cs-oleate), from ``system.describe``."""
    stock: dict[str, float | None] = {}
    reagents = described.get("reagents", {})
    for name, info in reagents.items() if isinstance(reagents, dict) else ():
        info = info if isinstance(info, dict) else {}
        for alias in [name, *(info.get("aliases") or [])]:
            if isinstance(alias, str):
                stock[alias] = info.get("stock_mL")
    return stock


def check_fit(
    described: dict[str, Any], program: Program, config: ReactionConfig, budget: int
) -> None:
    """What the lab's ``system.describe`` says against the request, before it is queued and
    again when it starts: its modules, its stock for the whole budget, and its limits over the
    whole search space. Raises :class:`ResourceProblem` naming what does not fit."""
    modules = described.get("modules", {})
    missing = sorted(m for m in program.modules_used() if m not in modules)
    if missing:
        raise ResourceProblem(
            f"the lab {described.get('lab', '')!r} has no module {', '.join(missing)} that the "
            f"reaction {config.name!r} uses (it has {', '.join(sorted(modules))})"
        )
    stock = stock_by_name(described)
    per_run = program.reagent_volumes(config.defaults())
    for reagent, volume in sorted(per_run.items()):
        have = stock.get(reagent)
        if have is None:
            raise ResourceProblem(f"the lab has no stock bottle of {reagent!r}")
        need = volume * budget
        fits = experiments_covered(have, volume)
        if budget > fits:
            raise ResourceProblem(
                f"{reagent}: {budget} experiments need about {need:.1f} mL but the stock holds "
                f"{have:.1f} mL; refill it or lower the budget to {fits}",
                field="budget",
            )
    check_limits(described, program, config)


# Corners of a space with more variables than this are not all planned (2^d plans).
MAX_CORNER_DIMENSIONS = 8


def check_limits(described: dict[str, Any], program: Program, config: ReactionConfig) -> None:
    """Plan the experiment at every corner of the search space and hold each call's parameters
    against the limits the lab reports for the module it addresses (``system.describe`` is the
    only source of limits). A space reaching past them is refused whole: the daemon would refuse
    those experiments one by one, each costing the budget."""
    space = config.search_space()
    names = list(space.names)
    if not names or len(names) > MAX_CORNER_DIMENSIONS:
        return
    modules = described.get("modules", {})
    heaters = [m for m, info in modules.items() if info.get("kind") == "heater"]
    defaults = config.defaults()
    for corner in itertools.product(*zip(space.lower, space.upper, strict=True)):
        bindings = {**defaults, **dict(zip(names, map(float, corner), strict=True))}
        at = ", ".join(f"{n} = {v:g}" for n, v in zip(names, corner, strict=True))
        try:
            calls = program.plan(bindings)
        except LanguageError as exc:  # past the instruction set's own ranges
            raise ResourceProblem(f"at {at}: {exc.message}: narrow the search space") from exc
        for call in calls:
            for module, params in _addressed(call, heaters):
                limits = modules.get(module, {}).get("limits", {})
                for key, value in params.items():
                    low_high = limits.get(key)
                    if not _outside(value, low_high):
                        continue
                    raise ResourceProblem(
                        f"at {at} the experiment asks {module} for {key} = {value:g}, outside "
                        f"the lab's limits [{low_high[0]:g}, {low_high[1]:g}]: narrow the "
                        "search space to what the lab can do"
                    )


def _addressed(call: dict[str, Any], heaters: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(module id, parameters) pairs of one planned call: pumps name themselves (one move each
    in ``pump.parallel``), heater calls address the lab's heater."""
    method, params = call.get("method", ""), call.get("params") or {}
    if method == "pump.parallel":
        return [(m.get("pump", ""), m) for m in params.get("moves", []) if isinstance(m, dict)]
    if "pump" in params:
        return [(params["pump"], params)]
    if method.startswith("heater.") and len(heaters) == 1:
        return [(params.get("module", heaters[0]), params)]
    return []


def _outside(value: Any, low_high: Any) -> bool:
    if not (isinstance(low_high, list) and len(low_high) == 2):
        return False
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not low_high[0] <= value <= low_high[1]

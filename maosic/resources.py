"""CHECK_RESOURCES: can this lab run this reaction for this budget right now?"""

from __future__ import annotations

from typing import Any

from maosic.hardware import HardwareClient
from maosic.language.compiler import Program
from maosic.language.config import ReactionConfig


class ResourceProblem(RuntimeError):
    """The lab cannot run this request: a module is missing or a reagent runs short."""


class LabNotReady(RuntimeError):
    """A module the reaction needs is in fault or offline now; an operator can put it right."""


def check_resources(
    client: HardwareClient, program: Program, config: ReactionConfig, budget: int
) -> dict[str, Any]:
    """Raise :class:`ResourceProblem` (fail the request) or :class:`LabNotReady` (pause it until
    the lab is put right) with a reason a user understands; return the lab's description."""
    described = client.call("system.describe")
    status = client.call("system.status")
    modules = described.get("modules", {})
    used = program.modules_used()
    missing = sorted(m for m in used if m not in modules)
    if missing:
        raise ResourceProblem(
            f"the lab {described.get('lab', '')!r} has no module {', '.join(missing)} that the "
            f"reaction {config.name!r} uses (it has {', '.join(sorted(modules))})"
        )
    states = status.get("modules", {})
    faulty = {
        m: states[m].get("fault") or states[m].get("state")
        for m in sorted(used)
        if states.get(m, {}).get("state") in ("fault", "offline")
    }
    if faulty:
        detail = "; ".join(f"{m}: {why}" for m, why in faulty.items())
        raise LabNotReady(f"modules the reaction needs are not healthy: {detail}")
    stock = {name: info.get("stock_mL") for name, info in described.get("reagents", {}).items()}
    per_run = program.reagent_volumes(config.defaults())
    for reagent, volume in sorted(per_run.items()):
        have = stock.get(reagent)
        if have is None:
            raise ResourceProblem(f"the lab has no stock bottle of {reagent!r}")
        need = volume * budget
        if need > have + 1e-9:
            raise ResourceProblem(
                f"{reagent}: {budget} experiments need about {need:.1f} mL but the stock holds "
                f"{have:.1f} mL; refill it or lower the budget to {int(have // volume)}"
            )
    return described

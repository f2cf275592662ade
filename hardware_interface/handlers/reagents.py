"""reagent.*: the stock bottles' ledger. The daemon books every withdrawal against it; an
operator who pours reagent into a bottle says so with ``reagent.refill``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.errors import UNKNOWN_MODULE, AppError

if TYPE_CHECKING:
    from hardware_interface.daemon import LabDaemon

log = logging.getLogger("hardware_interface.rpc")

MAX_REFILL_ML = 10_000.0  # one pour, mL: a lab's largest stock bottle is a few litres
LEDGER = "stock"  # the "module" named in errors about the ledger itself


class ReagentMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def reagent_refill(self, reagent: str, added_mL: float) -> dict[str, Any]:
        """Book `added_mL` (mL, > 0) poured into `reagent`'s stock bottle; returns its stock."""
        if isinstance(reagent, str):
            reagent = self.lab.config.reagent_name(reagent)
        if reagent not in self.lab.stock_mL:
            raise AppError(
                UNKNOWN_MODULE,
                LEDGER,
                f"this lab has no stock bottle of {safety.shown(reagent)}; it has "
                + ", ".join(sorted(self.lab.stock_mL)),
                reagent=safety.module_name(reagent),
            )
        safety.check_volume_positive(LEDGER, added_mL)
        safety.check_in_range(LEDGER, "added_mL", added_mL, 0.0, MAX_REFILL_ML, "mL")
        with self.lab.ledger_lock:
            self.lab.stock_mL[reagent] += added_mL
            stock = self.lab.stock_mL[reagent]
            self.lab.save_stock()
        log.warning("stock of %s refilled by %g mL, now %.3f mL", reagent, added_mL, stock)
        return {"reagent": reagent, "added_mL": added_mL, "stock_mL": round(stock, 6)}

    def reagent_stock(self) -> dict[str, Any]:
        """Every stock bottle's content (mL), as the ledger has it, with its other names."""
        with self.lab.ledger_lock:
            return {
                name: {"stock_mL": round(ml, 6), "aliases": self.lab.config.aliases_of(name)}
                for name, ml in self.lab.stock_mL.items()
            }

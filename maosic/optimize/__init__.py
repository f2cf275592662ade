"""Ask/tell optimizers for closed-loop campaigns (SNOBFIT, random, grid, LHS, GP-EI, hybrid)."""

from maosic.optimize.base import Optimizer
from maosic.optimize.registry import (
    DEFAULT_OPTIMIZER,
    OPTIMIZERS,
    make_optimizer,
    optimizer_class,
    restore_optimizer,
)
from maosic.optimize.space import Space, as_space
from maosic.optimize.stopping import Stopper, StopReason

__all__ = [
    "DEFAULT_OPTIMIZER",
    "OPTIMIZERS",
    "Optimizer",
    "Space",
    "StopReason",
    "Stopper",
    "as_space",
    "make_optimizer",
    "optimizer_class",
    "restore_optimizer",
]

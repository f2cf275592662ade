"""Ask/tell optimizers for closed-loop campaigns (SNOBFIT, random, grid, LHS, GP-EI, hybrid,
ENN)."""

from maosic.optimize.base import Optimizer
from maosic.optimize.registry import (
    DEFAULT_OPTIMIZER,
    OPTIMIZERS,
    check_options,
    make_optimizer,
    optimizer_class,
    optimizer_options,
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
    "check_options",
    "make_optimizer",
    "optimizer_class",
    "optimizer_options",
    "restore_optimizer",
]

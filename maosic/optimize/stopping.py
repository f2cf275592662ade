"""Stop criteria of a campaign: budget (``max_expts``), target reached (the paper's OPTIMAL
check) and no improvement over N experiments.

The check is a pure function of the loss history, so a resumed campaign decides exactly as the
uninterrupted one would have. Losses are minimised; MAOSIC's reward is ``-loss`` (L = -|CD|).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass


class StopReason(enum.StrEnum):
    MAX_EXPTS = "max_expts"
    TARGET = "target"
    NO_IMPROVEMENT = "no_improvement"


@dataclass(frozen=True)
class Stopper:
    """Stop criteria.

    max_expts: total experiments allowed, failed ones included (>= 1).
    target_loss: stop as soon as a loss <= this is measured (None: no target).
    patience: stop when the best loss has not improved by more than ``min_improvement`` over the
        last ``patience`` experiments (None: never).
    min_improvement: improvement (loss units) that counts as progress for ``patience``.
    """

    max_expts: int
    target_loss: float | None = None
    patience: int | None = None
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.max_expts, bool) or not isinstance(self.max_expts, int):
            raise ValueError(f"stopping: max_expts must be an integer, got {self.max_expts!r}")
        if self.max_expts < 1:
            raise ValueError(f"stopping: max_expts must be >= 1, got {self.max_expts}")
        if self.target_loss is not None and not math.isfinite(self.target_loss):
            raise ValueError(f"stopping: target_loss must be finite, got {self.target_loss}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"stopping: patience must be >= 1, got {self.patience}")
        if not self.min_improvement >= 0:
            raise ValueError(f"stopping: min_improvement must be >= 0, got {self.min_improvement}")

    @classmethod
    def from_reward(
        cls,
        max_expts: int,
        target_reward: float | None = None,
        patience: int | None = None,
        min_improvement: float = 0.0,
    ) -> Stopper:
        """Criteria stated as a reward to reach (reward = -loss), as a configuration states them."""
        target = None if target_reward is None else -float(target_reward)
        return cls(max_expts, target, patience, min_improvement)

    def check(self, losses: Sequence[float | None]) -> StopReason | None:
        """Why to stop after this history of losses (None = a failed experiment), or None."""
        if self.target_loss is not None and any(
            loss is not None and loss <= self.target_loss for loss in losses
        ):
            return StopReason.TARGET
        if len(losses) >= self.max_expts:
            return StopReason.MAX_EXPTS
        if self.patience is not None and len(losses) > self.patience:
            if not _improved(losses, self.patience, self.min_improvement):
                return StopReason.NO_IMPROVEMENT
        return None


def _improved(losses: Sequence[float | None], patience: int, min_improvement: float) -> bool:
    """Did the last ``patience`` experiments beat the best before them by > min_improvement?"""
    before = [v for v in losses[:-patience] if v is not None]
    recent = [v for v in losses[-patience:] if v is not None]
    if not recent:
        return False
    if not before:
        return True
    return min(recent) < min(before) - min_improvement

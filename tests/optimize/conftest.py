"""Shared fixtures for the optimizer tests."""

from __future__ import annotations

import numpy as np
import pytest

from maosic.optimize.space import Space


@pytest.fixture
def cd_space() -> Space:
    """The paper's space: T in [90, 180] °C at 0.5 °C, C in [0.2, 1.2] mmol/mL at 0.01."""
    return Space(["T", "C"], np.array([90.0, 0.2]), np.array([180.0, 1.2]), np.array([0.5, 0.01]))


def bump_loss(point: dict[str, float]) -> float:
    """A smooth two-hill loss on the CD space, minimum -1 at (130 °C, 0.8 mmol/mL)."""
    t, c = point["T"], point["C"]
    glob = np.exp(-(((t - 130) / 15) ** 2) - ((c - 0.8) / 0.2) ** 2)
    local = 0.4 * np.exp(-(((t - 110) / 10) ** 2) - ((c - 0.4) / 0.1) ** 2)
    return -float(glob + local)

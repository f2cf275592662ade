"""Residence-time arithmetic and the (T, C) -> pump-rate formulas of contract B."""

from __future__ import annotations

import math

import pytest

from hardware_interface.sim import rig


def test_tube_volume_from_1_32_inch_id() -> None:
    radius_cm = 2.54 / 32.0 / 2.0
    length_cm = rig.TUBE_LENGTH_M * 100.0
    assert rig.TUBE_VOLUME_ML == pytest.approx(math.pi * radius_cm**2 * length_cm, rel=1e-9)


def test_residence_and_equilibration_times() -> None:
    assert rig.RESIDENCE_TIME_S == pytest.approx(rig.TUBE_VOLUME_ML / rig.TOTAL_FLOW_ML_MIN * 60.0)
    assert rig.EQUILIBRATION_S == pytest.approx(2.0 * rig.RESIDENCE_TIME_S)
    assert 20.0 < rig.RESIDENCE_TIME_S < 120.0  # a ~2 min loop as in the paper


@pytest.mark.parametrize("c", [0.2, 0.55, 0.8, 1.2])
def test_rates_keep_total_flow_and_ratio(c: float) -> None:
    r1, r2, r3 = rig.cspbbr3_rates_mL_min(c)
    assert r1 + r2 + r3 == pytest.approx(rig.TOTAL_FLOW_ML_MIN)
    assert r1 / r2 == pytest.approx(0.5)
    assert r1 == pytest.approx(rig.TOTAL_FLOW_ML_MIN * c / rig.C_CS_STOCK)
    assert rig.cspbbr3_concentration(r1, r2, r3) == pytest.approx(c)


def test_rates_refuse_impossible_concentrations() -> None:
    with pytest.raises(ValueError, match=r"C must be within \[0, 1.20\]"):
        rig.cspbbr3_rates_mL_min(1.3)
    with pytest.raises(ValueError, match="total flow"):
        rig.cspbbr3_concentration(0.0, 0.0, 0.0)


def test_heater_constants_are_consistent() -> None:
    assert rig.HEATER_POWER_W == 100.0
    # The cartridge can hold the hottest setpoint with margin.
    needed_w = rig.HEATER_LOSS_W_K * (rig.HEATER_MAX_C - rig.AMBIENT_C)
    assert needed_w < 0.8 * rig.HEATER_POWER_W
    assert rig.HEATER_TAU_S == pytest.approx(rig.HEATER_HEAT_CAPACITY_J_K / rig.HEATER_LOSS_W_K)


def test_robot_travel_table_covers_every_pair() -> None:
    pos = rig.ROBOT_POSITIONS
    pairs = {frozenset({a, b}) for a in pos for b in pos if a != b}
    assert pairs == set(rig.ROBOT_MOVE_S)

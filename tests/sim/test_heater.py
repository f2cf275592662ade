"""Thermal response of the simulated heater: ramp, settling, holding, faults."""

from __future__ import annotations

import pytest

from hardware_interface.sim import rig
from hardware_interface.sim.errors import FaultError, LimitError
from hardware_interface.sim.heater import HeaterModel
from hardware_interface.sim.world import SimLab


def _first_stable(h: HeaterModel, until_s: float, step_s: float = 1.0) -> float | None:
    t = 0.0
    while t <= until_s:
        if h.stable(t):
            return t
        t += step_s
    return None


@pytest.mark.parametrize("setpoint", [90.0, 130.0, 180.0])
def test_settles_within_one_degree_in_about_five_minutes(setpoint: float) -> None:
    h = HeaterModel()
    h.set(0.0, setpoint, 60.0)
    t_stable = _first_stable(h, 1800.0)
    assert t_stable is not None and t_stable <= 6 * 60.0
    # Holds: every reading for the next 20 min within ±1 °C.
    for k in range(1200):
        t = t_stable + k
        assert abs(h.reading_C(t) - setpoint) <= 1.0


def test_ramp_rate_is_finite() -> None:
    h = HeaterModel()
    h.set(0.0, 150.0, 10.0)
    # After 3 min at 10 °C/min the block cannot be much above 25 + 30 °C.
    assert h.temperature_C(180.0) < rig.AMBIENT_C + 30.0 + 2.0
    assert h.temperature_C(180.0) > rig.AMBIENT_C + 20.0
    assert not h.stable(600.0)
    assert _first_stable(h, 3000.0) is not None


def test_first_order_cooling_when_off() -> None:
    h = HeaterModel()
    h.set(0.0, 150.0, 60.0)
    h.advance(1200.0)
    hot = h.temperature_C(1200.0)
    h.set(1200.0, None, 10.0)
    after_tau = h.temperature_C(1200.0 + rig.HEATER_TAU_S + rig.HEATER_STEP_S)
    expected = rig.AMBIENT_C + (hot - rig.AMBIENT_C) / 2.718281828
    assert after_tau == pytest.approx(expected, abs=1.5)
    assert h.power_pct == 0.0


def test_trajectory_does_not_depend_on_query_pattern() -> None:
    a, b = HeaterModel(), HeaterModel()
    a.set(0.0, 120.0, 20.0)
    b.set(0.0, 120.0, 20.0)
    for t in range(0, 600, 7):
        a.temperature_C(float(t) + 0.3)
    assert a.temperature_C(600.0) == b.temperature_C(600.0)


def test_mean_temperature_over_an_interval() -> None:
    h = HeaterModel()
    h.set(0.0, 100.0, 60.0)
    h.advance(2000.0)
    assert h.mean_temperature_C(1500.0, 1900.0) == pytest.approx(100.0, abs=0.3)
    assert h.mean_temperature_C(0.0, 10.0) == pytest.approx(rig.AMBIENT_C, abs=2.0)


def test_lab_overtemperature_trips_and_latches() -> None:
    lab = SimLab()
    lab.heater_set(130.0, 60.0)
    lab.wait(300.0)
    lab.inject_overtemperature(100.0)
    assert lab.heater_fault() == "overtemperature"
    assert lab.heater_setpoint_C() is None
    status = lab.heater_status()
    assert status["state"] == "fault" and status["temperature_C"] > rig.HEATER_TRIP_C
    with pytest.raises(FaultError, match="H1") as info:
        lab.heater_set(100.0, 10.0)
    assert info.value.code == -32004 and info.value.module == "H1"
    lab.reset_faults()
    lab.heater_set(100.0, 10.0)
    assert lab.heater_fault() is None


def test_lab_heater_limits() -> None:
    lab = SimLab()
    with pytest.raises(LimitError, match="setpoint_C"):
        lab.heater_set(250.0, 10.0)
    with pytest.raises(LimitError, match="ramp_C_min"):
        lab.heater_set(100.0, 0.0)


def test_lab_heater_waits_until_stable() -> None:
    lab = SimLab()
    lab.heater_set(130.0, 30.0)
    waited = 0.0
    while not lab.heater_stable():
        lab.wait(5.0)
        waited += 5.0
        assert waited < 1800.0
    assert abs(lab.heater_temperature_C() - 130.0) <= 1.0
    assert 0.0 < lab.heater_power_pct() < 100.0

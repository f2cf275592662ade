"""The simulated lab keeps its physical state in a file across restarts, as hardware does."""

from __future__ import annotations

import json

import pytest

from hardware_interface.sim import rig
from hardware_interface.sim.state_file import SimStateError
from hardware_interface.sim.world import SimLab


def test_syringes_stock_arm_and_a_move_in_progress_survive_a_restart(tmp_path):
    path = tmp_path / "lab.json"
    lab = SimLab(state_path=path)
    lab.pump_start("SP1", "withdraw", 0.3, 1.0)
    lab.wait(60.0)
    lab.pump_start("SP2", "withdraw", 0.2, 1.0)  # still moving when the "daemon" dies
    lab.robot_move("cd")
    # no close(): a process killed -9 leaves the file as the last change wrote it
    again = SimLab(state_path=path)
    assert again.syringe_volume_mL("SP1") == pytest.approx(0.3)
    assert again.syringe_reagent("SP1") == "Cs-oleate"
    assert again.syringe_volume_mL("SP2") == pytest.approx(0.2)  # the pump finished on its own
    assert again.syringe_volume_mL("SP3") == 0.0
    assert again.stock_mL("Cs-oleate") == pytest.approx(20.0 - 0.3)
    assert again.stock_mL("PbBr2") == pytest.approx(40.0 - 0.2)
    assert again.robot_position() == "cd" and not again.robot_busy()
    assert not again.pump_busy("SP2")


def test_a_stable_heater_is_still_stable_and_holding_after_a_restart(tmp_path):
    path = tmp_path / "lab.json"
    lab = SimLab(state_path=path, seed=2)
    lab.heater_set(120.0, 30.0)
    lab.wait(900.0)
    assert lab.heater_stable()
    lab.close()
    again = SimLab(state_path=path, seed=2)
    assert again.heater_setpoint_C() == 120.0
    assert again.heater_block_temperature_C() == pytest.approx(120.0, abs=1.0)
    assert again.heater_stable()  # the board kept its stability record
    # the PID's integral came back too: the block holds its setpoint without a droop
    for _ in range(10):
        again.wait(30.0)
        assert again.heater_block_temperature_C() == pytest.approx(120.0, abs=0.5)
        assert again.heater_stable()


def test_without_a_state_file_each_lab_is_fresh(tmp_path):
    lab = SimLab()
    lab.pump_start("SP1", "withdraw", 0.3, 1.0)
    lab.close()
    assert SimLab().syringe_volume_mL("SP1") == 0.0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d.update(chemistry="cs3cu2i5"), "saved for the 'cs3cu2i5' rig"),
        (lambda d: d["syringes"]["SP1"].update(volume_mL=9.0), "SP1 volume_mL = 9.0 outside"),
        (lambda d: d["robot"].update(position="roof"), "robot position 'roof' unknown"),
        (lambda d: d.pop("heater"), "'heater'"),
    ],
)
def test_a_state_file_that_does_not_fit_the_rig_is_refused(tmp_path, change, complaint):
    path = tmp_path / "lab.json"
    SimLab(state_path=path).pump_start("SP1", "withdraw", 0.1, 1.0)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(SimStateError) as refused:
        SimLab(state_path=path)
    assert str(path) in str(refused.value) and complaint in str(refused.value)


def test_the_file_holds_only_this_rigs_names(tmp_path):
    path = tmp_path / "lab.json"
    lab = SimLab(chemistry="cs3cu2i5", state_path=path)
    lab.heater_set(90.0, 10.0)
    data = json.loads(path.read_text())
    assert set(data["syringes"]) == set(rig.RIGS["cs3cu2i5"].pump_reagents)
    assert data["heater"]["setpoint_C"] == 90.0 and data["chemistry"] == "cs3cu2i5"

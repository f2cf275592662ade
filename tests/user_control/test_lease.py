"""`lease`: see, take and give back the lab's lease from a terminal; manual commands carry it.

Against a real daemon on the simulated lab; a campaign is a HardwareClient holding the lease as
a core's worker does. The epoch `lease take` was granted is kept in a 0600 file keyed by the
daemon's URL, so separate invocations (and child processes) carry it.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware_interface.errors import LEASE_LOST
from hardware_interface.server import DaemonHandle, start_daemon
from maosic.hardware import HardwareClient, HardwareError
from tests.user_control.helpers import run, run_process

WORKER = "lab@core-host:0a1b2c3d:0"


@pytest.fixture
def daemon() -> Iterator[DaemonHandle]:
    handle = start_daemon(sim=True, port=0, seed=0, speed=0.0, watchdog_s=0)
    yield handle
    handle.stop()


@pytest.fixture
def hw(daemon, tmp_path):
    """Run a command against ``daemon`` in-process as the account "alice"."""

    def call(*argv: str):
        return run(["--hardware-url", daemon.url, "--user", "alice", *argv], tmp_path)

    return call


@pytest.fixture
def campaign(daemon) -> Iterator[HardwareClient]:
    """A core's worker holding the lab, its moving calls under its epoch."""
    client = HardwareClient(daemon.url, retries=0, timeout_s=20)
    client.lease_epoch = client.call("lease.acquire", holder=WORKER, ttl_s=60)["epoch"]
    yield client
    client.close()


def lease_file(home: Path) -> Path:
    return home / ".config" / "maosic" / "leases.json"


def test_take_drive_and_give_back(daemon, hw, tmp_path):
    assert "lab free" in hw("lease").out
    taken = hw("lease", "take")
    assert taken.status == 0, taken.err
    assert "you hold the lab as operator:alice (epoch 1)" in taken.out
    saved = json.loads(lease_file(tmp_path).read_text())
    assert saved[daemon.url]["epoch"] == 1 and saved[daemon.url]["holder"] == "operator:alice"
    assert stat.S_IMODE(lease_file(tmp_path).stat().st_mode) == 0o600
    # A separate process carries the saved epoch: the lab is held, and the fill still runs.
    filled = run_process(
        ["--hardware-url", daemon.url, "--user", "alice", "pump", "SP1", "fill", "R1", "0.2"],
        tmp_path,
    )
    assert filled.status == 0, filled.err
    assert daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.2)
    shown = hw("lease")
    assert "lab leased to operator:alice (epoch 1)" in shown.out and "(held)" in shown.out
    given = hw("lease", "release")
    assert given.status == 0 and "lab given back (epoch 1)" in given.out
    assert daemon.daemon.lease.status()["holder"] is None
    assert json.loads(lease_file(tmp_path).read_text()) == {}


def test_moving_commands_renew_the_hold(daemon, hw):
    assert hw("lease", "take", "--ttl", "900").status == 0
    daemon.daemon.lease.renew(1, ttl_s=5.0)  # as if the hold were about to run out
    assert hw("pump", "SP1", "fill", "R1", "0.1").status == 0
    assert daemon.daemon.lease.status()["expires_in_s"] > 890
    assert hw("status").status == 0  # a read neither needs nor renews the lease


def test_refusal_prints_the_holder(daemon, hw, campaign):
    refused = hw("pump", "SP1", "fill", "R1", "0.2")
    assert refused.status == 1 and refused.out == ""
    assert WORKER in refused.err and "lease take" in refused.err
    assert daemon.lab.syringe_volume_mL("SP1") == 0.0
    taking = hw("lease", "take")
    assert taking.status == 1
    assert WORKER in taking.err and "lease take --take" in taking.err
    assert f"lab leased to {WORKER}" in hw("lease").out


def test_take_pre_empts_the_campaign_and_reports_the_recovery(daemon, hw, campaign):
    campaign.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
    taken = hw("lease", "take", "--take")
    assert taken.status == 0, taken.err
    assert f"taken over from {WORKER}" in taken.out
    assert "recovery:" in taken.out and "SP1" in taken.out
    assert daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.0)
    with pytest.raises(HardwareError) as lost:
        campaign.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)
    assert lost.value.code == LEASE_LOST
    assert hw("pump", "SP1", "fill", "R1", "0.1").status == 0


def test_a_hold_taken_over_is_refused_and_forgotten(daemon, hw, tmp_path):
    assert hw("lease", "take").status == 0
    other = HardwareClient(daemon.url, retries=0)
    other.call("lease.acquire", holder=WORKER, ttl_s=60, take=True)
    refused = hw("pump", "SP1", "fill", "R1", "0.1")
    assert refused.status == 1
    assert "pump.fill not sent" in refused.err and f"now held by {WORKER}" in refused.err
    assert json.loads(lease_file(tmp_path).read_text()) == {}
    again = hw("pump", "SP1", "fill", "R1", "0.1")  # no epoch now: the holder is named
    assert again.status == 1 and f"leased to {WORKER}" in again.err
    other.close()


def test_leases_are_kept_per_daemon(daemon, hw, tmp_path):
    second = start_daemon(sim=True, port=0, seed=0, speed=0.0, watchdog_s=0)
    try:
        assert hw("lease", "take").status == 0
        on_second = run(["--hardware-url", second.url, "lease"], tmp_path)
        assert "lab free" in on_second.out and "saved lease" not in on_second.out
        assert run(["--hardware-url", second.url, "lease", "release"], tmp_path).status == 1
        assert daemon.daemon.lease.status()["holder"] == "operator:alice"
    finally:
        second.stop()


def test_lease_file_option_and_json(daemon, tmp_path):
    where = tmp_path / "elsewhere" / "leases.json"
    argv = ["--hardware-url", daemon.url, "--lease-file", str(where), "--json", "lease", "take"]
    taken = run([*argv, "--holder", "operator:bench"], tmp_path)
    assert taken.status == 0, taken.err
    assert json.loads(taken.out)["holder"] == "operator:bench"
    assert json.loads(where.read_text())[daemon.url]["epoch"] == 1
    assert not lease_file(tmp_path).exists()


def test_a_lease_saved_for_another_lab_is_not_used(daemon, hw, tmp_path):
    """The URL now reaches another lab whose epochs happen to match: nothing is sent."""
    assert hw("lease", "take").status == 0
    saved = json.loads(lease_file(tmp_path).read_text())
    saved[daemon.url]["lab_uid"] = "old-lab"
    lease_file(tmp_path).write_text(json.dumps(saved))
    refused = hw("pump", "SP1", "fill", "R1", "0.1")
    assert refused.status == 1 and "not by your saved lease of lab old-lab" in refused.err
    assert "forgotten" in refused.err
    assert daemon.lab.syringe_volume_mL("SP1") == 0.0
    assert json.loads(lease_file(tmp_path).read_text()) == {}

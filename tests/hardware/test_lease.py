"""The lab lease on the daemon, over real HTTP: one holder at a time, fenced by its epoch."""

from __future__ import annotations

import pytest
import requests

from hardware_interface.errors import LEASE_HELD, LEASE_LOST
from hardware_interface.lease import OPEN_METHODS
from hardware_interface.server import start_daemon
from maosic.hardware import HardwareClient, HardwareError


@pytest.fixture
def daemon(tmp_path):
    handle = start_daemon(sim=True, journal_path=tmp_path / "journal.json")
    yield handle
    handle.stop()


def _client(url: str, epoch: int | None = None) -> HardwareClient:
    client = HardwareClient(url, retries=0)
    client.lease_epoch = epoch
    return client


def test_one_holder_at_a_time_and_the_refusal_names_it(daemon):
    free = _client(daemon.url)
    grant = free.call("lease.acquire", holder="core-a", ttl_s=30)
    assert grant["holder"] == "core-a" and grant["epoch"] == 1 and grant["took_over"] is None
    assert len(grant["lab_uid"]) == 32
    with pytest.raises(HardwareError) as refused:
        free.call("lease.acquire", holder="core-b")
    assert refused.value.code == LEASE_HELD
    assert "core-a" in str(refused.value) and refused.value.data["holder"] == "core-a"
    # a moving call without the epoch is refused while the lease is held, naming the holder
    with pytest.raises(HardwareError) as unleased:
        free.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)
    assert unleased.value.code == LEASE_HELD and "core-a" in str(unleased.value)
    assert free.call("pump.status", pump="SP1")["volume_mL"] == 0.0  # nothing moved
    # the holder's own calls run
    holder = _client(daemon.url, grant["epoch"])
    assert holder.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)["volume_mL"]


def test_a_superseded_epoch_is_refused_whatever_its_sender_believes(daemon):
    free = _client(daemon.url)
    old = free.call("lease.acquire", holder="core-a", ttl_s=30)["epoch"]
    taken = free.call("lease.acquire", holder="operator:olga", take=True)
    assert taken["epoch"] == old + 1 and taken["took_over"] == "core-a"
    stale = _client(daemon.url, old)
    with pytest.raises(HardwareError) as lost:
        stale.call("heater.set", setpoint_C=60.0, wait_stable=False)
    assert lost.value.code == LEASE_LOST and "operator:olga" in str(lost.value)
    assert free.call("heater.status")["setpoint_C"] is None  # nothing happened
    with pytest.raises(HardwareError) as renew:
        stale.call("lease.renew", epoch=old)
    assert renew.value.code == LEASE_LOST
    assert stale.call("lease.release", epoch=old)["released"] is False
    assert free.call("lease.status")["holder"] == "operator:olga"


def test_expiry_frees_the_lab_and_the_same_holder_gets_it_back_at_once(daemon):
    free = _client(daemon.url)
    first = free.call("lease.acquire", holder="core-a", ttl_s=1)["epoch"]
    # the same holder (a restarted core) takes it again at once, fencing its old epoch
    again = free.call("lease.acquire", holder="core-a", ttl_s=1)["epoch"]
    assert again == first + 1
    with pytest.raises(HardwareError):
        _client(daemon.url, first).call("heater.off")
    daemon.daemon.lease._clock = lambda: 10**10  # far beyond the expiry
    assert free.call("lease.status")["holder"] is None
    later = free.call("lease.acquire", holder="core-b", ttl_s=5)
    assert later["epoch"] == again + 1 and later["took_over"] is None


def test_release_gives_the_lab_back(daemon):
    free = _client(daemon.url)
    epoch = free.call("lease.acquire", holder="core-a")["epoch"]
    assert free.call("lease.release", epoch=epoch)["released"] is True
    assert free.call("lease.status")["holder"] is None
    assert free.call("lease.acquire", holder="core-b")["epoch"] == epoch + 1


def test_reads_and_the_emergency_stop_need_no_lease(daemon):
    free = _client(daemon.url)
    free.call("lease.acquire", holder="core-a")
    for method, params in [
        ("system.status", {}),
        ("system.describe", {}),
        ("pump.status", {"pump": "SP1"}),
        ("heater.status", {}),
        ("reagent.stock", {}),
        ("reagent.refill", {"reagent": "ODE", "added_mL": 1.0}),
    ]:
        assert method in OPEN_METHODS
        free.call(method, **params)
    stopped = free.call("system.stop")["stopped"]
    assert "SP1" in stopped and "H1" in stopped


def test_the_epoch_survives_a_daemon_restart(tmp_path):
    journal = tmp_path / "journal.json"
    first = start_daemon(sim=True, journal_path=journal)
    try:
        grant = _client(first.url).call("lease.acquire", holder="core-a", ttl_s=60)
    finally:
        first.stop()
    second = start_daemon(sim=True, journal_path=journal)
    try:
        free = _client(second.url)
        status = free.call("lease.status")
        assert status["holder"] == "core-a" and status["epoch"] == grant["epoch"]
        assert status["lab_uid"] == grant["lab_uid"]
        # still leased: the holder goes on; a stranger is refused; epochs never go back
        _client(second.url, grant["epoch"]).call("heater.off")
        with pytest.raises(HardwareError):
            free.call("heater.off")
        taken = free.call("lease.acquire", holder="core-b", take=True)
        assert taken["epoch"] == grant["epoch"] + 1
    finally:
        second.stop()


@pytest.mark.parametrize("header", ["abc", "-1", "1" * 40, "1.5"])
def test_a_malformed_epoch_header_is_refused(daemon, header):
    reply = requests.post(
        daemon.url,
        json={"jsonrpc": "2.0", "id": 1, "method": "heater.off", "params": {}},
        headers={"X-MAOSIC-Lease": header},
        timeout=5,
    )
    assert reply.status_code == 400 and "X-MAOSIC-Lease" in reply.json()["error"]


@pytest.mark.parametrize(
    "params",
    [
        {"holder": ""},
        {"holder": "x" * 200},
        {"holder": "a\nb"},
        {"holder": "a", "ttl_s": 0},
        {"holder": "a", "ttl_s": 1e9},
    ],  # fmt: skip
)
def test_bad_acquire_parameters_name_the_field(daemon, params):
    with pytest.raises(HardwareError) as bad:
        _client(daemon.url).call("lease.acquire", **params)
    field = "ttl_s" if "ttl_s" in params else "holder"
    assert field in f"{bad.value} {bad.value.data}"
    assert _client(daemon.url).call("lease.status")["epoch"] == 0

"""Manual control takes the lab's lease: the operator page against a real simulated daemon.

An operator takes the lab, drives it under the lease's epoch, gives it back; a campaign holding
the lab refuses their commands naming it; pausing the campaign takes it over (and the
campaign's next call is refused); every manual call is audited with who sent it and under which
lease, and scripts/decrypt_log.py reads it back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud import lab_lease
from hardware_interface.errors import LEASE_HELD, LEASE_LOST
from maosic.db.models import HardwareCommand
from maosic.hardware import HardwareError
from tests.cloud.campaign import WORKER, Campaign
from tests.cloud.conftest import login
from tests.security.helpers import load_script

decrypt_log = load_script("decrypt_log")

FILL = {"method": "pump.fill", "params": {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 0.2}}


@pytest.fixture
def operator(lab_app):
    client = lab_app.test_client()
    login(client, "operator")
    return client


def _lease(client) -> dict:
    status = client.get("/operator/hardware/status.json").get_json()
    assert status["reachable"] is True, status
    return status["lease"]


def _take(client, action: str = "take") -> dict:
    reply = client.post("/operator/hardware/lease", json={"action": action})
    assert reply.status_code == 200
    return reply.get_json()


def test_take_drive_and_give_back(operator, sim_daemon, web_sessions):
    assert _lease(operator)["holder"] is None
    taken = _take(operator)
    assert taken["ok"] is True and taken["recovered"] == []
    epoch = taken["lease"]["epoch"]
    lease = _lease(operator)
    assert lease["holder"] == "operator:operator" and lease["mine"] is True
    assert lease["epoch"] == epoch and 590 < lease["expires_in_s"] <= 600

    done = operator.post("/operator/hardware/command", json=FILL).get_json()
    assert done["ok"] is True, done
    assert sim_daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.2)

    given = _take(operator, "release")
    assert given["ok"] is True and given["lease"]["released"] is True
    assert _lease(operator)["holder"] is None
    with web_sessions() as session:
        rows = list(session.scalars(select(HardwareCommand).order_by(HardwareCommand.id)))
    assert [r.method for r in rows] == ["lease.acquire", "pump.fill", "lease.release"]
    assert {r.actor for r in rows} == {"operator:operator"}
    assert all(r.lease_epoch == epoch and r.request_id is None for r in rows)


def test_each_command_renews_the_manual_hold(operator, sim_daemon):
    epoch = _take(operator)["lease"]["epoch"]
    sim_daemon.daemon.lease.renew(epoch, ttl_s=5.0)  # as if the hold were about to run out
    assert _lease(operator)["expires_in_s"] <= 5.0
    assert operator.post("/operator/hardware/command", json=FILL).get_json()["ok"] is True
    assert _lease(operator)["expires_in_s"] > lab_lease.MANUAL_TTL_S - 10


def test_command_while_a_campaign_holds_the_lab_is_refused_naming_it(
    operator, sim_daemon, web_sessions, log_key
):
    campaign = Campaign(sim_daemon.url)
    try:
        reply = operator.post("/operator/hardware/command", json=FILL)
        assert reply.status_code == 200  # the daemon answered: not a 500/503
        body = reply.get_json()
        assert body["ok"] is False and body["code"] == LEASE_HELD
        assert WORKER in body["error"] and body["data"]["holder"] == WORKER
        assert sim_daemon.lab.syringe_volume_mL("SP1") == 0.0  # nothing moved
        lease = _lease(operator)
        assert lease["holder"] == WORKER and not lease["mine"]
        assert lease["holder_is_operator"] is False
        # Taking it politely is refused too, naming the campaign.
        refused = _take(operator)
        assert refused["ok"] is False and WORKER in refused["error"]
    finally:
        campaign.close()
    with web_sessions() as session:
        row = session.scalars(select(HardwareCommand).where(HardwareCommand.method == "pump.fill"))
        refused_row = row.one()
    assert refused_row.ok is False and refused_row.error_code == LEASE_HELD
    assert refused_row.actor == "operator:operator" and refused_row.lease_epoch is None


def test_pausing_the_campaign_takes_the_lab_and_runs_the_recovery(operator, sim_daemon):
    campaign = Campaign(sim_daemon.url)
    try:
        # The campaign left reagent in a syringe: the lab is not idle when the operator takes it.
        campaign.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
        taken = _take(operator, "take_over")
        assert taken["ok"] is True and taken["took_over"] == WORKER
        assert taken["recovered"], "taking a loaded lab must run the recovery"
        assert any("SP1" in sentence for sentence in taken["recovered"])
        assert sim_daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.0)
        assert _lease(operator)["mine"] is True
        with pytest.raises(HardwareError) as lost:
            campaign.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)
        assert lost.value.code == LEASE_LOST
        assert operator.post("/operator/hardware/command", json=FILL).get_json()["ok"] is True
    finally:
        campaign.close()


def test_a_hold_taken_over_is_reported_and_forgotten(operator, sim_daemon):
    _take(operator)
    campaign = Campaign(sim_daemon.url, take=True)  # e.g. another operator's deliberate take
    try:
        body = operator.post("/operator/hardware/command", json=FILL).get_json()
        assert body["ok"] is False and body["lease_lost"] is True
        assert body["code"] == LEASE_LOST and WORKER in body["error"]
        assert sim_daemon.lab.syringe_volume_mL("SP1") == 0.0
        lease = _lease(operator)
        assert lease["holder"] == WORKER and lease["mine"] is False
        # Forgotten: the next command goes without an epoch and is refused as LEASE_HELD.
        again = operator.post("/operator/hardware/command", json=FILL).get_json()
        assert again["code"] == LEASE_HELD
        assert _take(operator, "release")["ok"] is False
    finally:
        campaign.close()


def test_manual_session_is_decrypted_by_decrypt_log(operator, sim_daemon, db_url, log_key, capsys):
    epoch = _take(operator)["lease"]["epoch"]
    assert operator.post("/operator/hardware/command", json=FILL).get_json()["ok"] is True
    heat = {"method": "heater.set", "params": {"setpoint_C": "120"}}
    assert operator.post("/operator/hardware/command", json=heat).get_json()["ok"] is True
    _take(operator, "release")

    entries = decrypt_log.manual_log(db_url, log_key)
    assert [e["method"] for e in entries] == [
        "lease.acquire",
        "pump.fill",
        "heater.set",
        "lease.release",
    ]
    fill = entries[1]
    assert fill["actor"] == "operator:operator" and fill["lease_epoch"] == epoch
    assert fill["params"] == {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 0.2}
    assert fill["result"]["volume_mL"] == pytest.approx(0.2)
    assert entries[2]["params"] == {"setpoint_C": 120.0, "wait_stable": False}
    assert decrypt_log.manual_log(db_url, log_key, actor="operator", epoch=epoch) == entries
    assert decrypt_log.manual_log(db_url, log_key, actor="someone-else") == []

    argv = ["--manual", "--database-url", db_url, "--key-file", str(log_key)]
    assert decrypt_log.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"== operator:operator, lease epoch {epoch}: 4 commands")
    assert "pump.fill" in out[2] and '"reagent":"Cs-oleate"' in out[2] and "[ok," in out[2]
    assert decrypt_log.main([*argv, "--actor", "nobody"]) == 1
    assert "no audit log for manual commands of nobody" in capsys.readouterr().err

    # `decrypt_log.py ... | head`: a reader gone before the output ends is no traceback
    script = Path(__file__).resolve().parents[2] / "scripts" / "decrypt_log.py"
    piped = subprocess.Popen(
        [sys.executable, str(script), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    piped.stdout.close()  # like `head` exiting at once
    err = piped.stderr.read().decode()
    assert piped.wait(60) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_decrypt_log_wants_a_request_or_a_sender(db_url, log_key):
    with pytest.raises(SystemExit):
        decrypt_log.main(["--database-url", db_url, "--key-file", str(log_key)])
    with pytest.raises(SystemExit):
        decrypt_log.main(["3", "--manual", "--database-url", db_url])


def test_lease_action_must_be_known(operator):
    reply = operator.post("/operator/hardware/lease", json={"action": "steal"})
    assert reply.status_code == 400
    assert operator.post("/operator/hardware/lease", data="x").status_code == 400


def test_lease_routes_are_for_operators_only(lab_app):
    client = lab_app.test_client()
    login(client, "demo")
    assert client.post("/operator/hardware/lease", json={"action": "take"}).status_code == 403


def test_a_hold_remembered_from_another_lab_is_not_used(operator, sim_daemon):
    """The daemon's URL now reaches another lab whose epochs happen to match: no command."""
    _take(operator)
    with operator.session_transaction() as session:
        session[lab_lease.SESSION_KEY] = {**session[lab_lease.SESSION_KEY], "lab_uid": "old-lab"}
    assert _lease(operator)["mine"] is False
    body = operator.post("/operator/hardware/command", json=FILL).get_json()
    assert body["ok"] is False and body["lease_lost"] is True and body["code"] == LEASE_LOST
    assert "old-lab" in body["error"] and "take the lab again" in body["error"]
    assert sim_daemon.lab.syringe_volume_mL("SP1") == 0.0
    with operator.session_transaction() as session:
        assert lab_lease.SESSION_KEY not in session

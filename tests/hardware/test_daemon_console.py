"""What the daemon's console says (issue 20, item 13): a normal stop is not an emergency, and
a person reads one short line per command while payloads stay at DEBUG."""

from __future__ import annotations

import requests

from tests.faults.processes import daemon_process


def _call(url: str, method: str, **params) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return requests.post(url, json=body, timeout=10).json()


def test_a_normal_stop_is_no_emergency_and_payloads_stay_at_debug(tmp_path):
    daemon = daemon_process(tmp_path).start()
    try:
        assert "result" in _call(daemon.url, "pump.fill", pump="SP1", reagent="Cs-oleate",
                                 volume_mL=0.123456)  # fmt: skip
        assert "error" in _call(daemon.url, "heater.set", setpoint_C=999)
        for _ in range(5):
            _call(daemon.url, "system.status")  # polled reads: no INFO line each
    finally:
        daemon.stop()  # SIGTERM: the instruments are stopped, as on Ctrl-C
    log = (tmp_path / "daemon.log").read_text(errors="replace")
    assert "EMERGENCY" not in log and " ERROR " not in log, log[-2000:]
    assert "stopping every pump and the heater: daemon shutting down" in log
    assert "pump.fill -> ok" in log
    assert "heater.set -> error" in log
    assert "0.123456" not in log  # the payload is DEBUG
    assert "system.status" not in log

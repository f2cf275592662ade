"""Two labs: each request goes to a lab that has its modules and reagents; FIFO per lab."""

import json

import pytest

from hardware_interface.server import start_daemon
from maosic.config import load_settings
from maosic.core import start_core
from maosic.labs import parse_labs
from tests.core.rpc_helpers import EXAMPLES, TEST_CORE_TOKEN, cspbbr3_config, rpc, wait_for


def test_parse_labs():
    assert parse_labs("", "http://x/") == {"default": "http://x/"}
    assert parse_labs("a=http://p1:8888/, b=http://p2:8888/", "") == {
        "a": "http://p1:8888/",
        "b": "http://p2:8888/",
    }
    with pytest.raises(ValueError, match="'oops' is not NAME=URL"):
        parse_labs("a=http://p1/,oops", "")


def test_requests_are_routed_to_a_lab_that_can_run_them(db_url, tmp_path):
    perovskite = start_daemon(sim=True, port=0, chemistry="cspbbr3", seed=1)
    copper = start_daemon(sim=True, port=0, chemistry="cs3cu2i5", seed=2)
    settings = load_settings(
        environ={
            "MAOSIC_INSTANCE_PATH": str(tmp_path),
            "MAOSIC_DATABASE_URL": db_url,
            "MAOSIC_LABS": f"perovskite={perovskite.url},copper={copper.url}",
            "MAOSIC_CORE_TOKEN": TEST_CORE_TOKEN,
            "MAOSIC_WORKER_POLL_S": "0.1",
        }
    )
    core = start_core(settings, port=0)
    try:
        cu_config = json.loads((EXAMPLES / "cs3cu2i5.json").read_text(encoding="utf-8"))
        cu = rpc(core.url, "request.submit", config=cu_config, budget=2, seed=1)
        pb = rpc(core.url, "request.submit", config=cspbbr3_config(), budget=2, seed=1)
        # The copper lab has no PbBr2 stock; the perovskite lab has no fourth pump.
        assert pb["lab"] == "perovskite" and cu["lab"] == "copper"
        # Served in parallel, each by its own lab's worker.
        for sub in (cu, pb):
            final = wait_for(core.url, sub["id"], {"done", "failed"})
            assert final["status"] == "done", final
        assert copper.lab.stock_mL("CuI") < 200.0  # the copper run used its own stock
        assert perovskite.lab.stock_mL("PbBr2") < 40.0  # the perovskite run used its stock
    finally:
        core.stop()
        perovskite.stop()
        copper.stop()


def test_no_lab_fits_names_what_is_missing(db_url, tmp_path):
    copper = start_daemon(sim=True, port=0, chemistry="cs3cu2i5")
    settings = load_settings(
        environ={
            "MAOSIC_INSTANCE_PATH": str(tmp_path),
            "MAOSIC_DATABASE_URL": db_url,
            "MAOSIC_LABS": f"copper={copper.url}",
            "MAOSIC_CORE_TOKEN": TEST_CORE_TOKEN,
        }
    )
    core = start_core(settings, port=0)
    try:
        with pytest.raises(RuntimeError) as err:
            rpc(core.url, "request.submit", config=cspbbr3_config(), budget=2)
        assert "copper lacks" in err.value.args[0]["message"]
        assert "reagent:PbBr2" in err.value.args[0]["message"]
    finally:
        core.stop()
        copper.stop()

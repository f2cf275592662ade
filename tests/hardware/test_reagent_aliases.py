"""Stock bottles answer to their aliases (the paper's Cs-Precursor for Cs-oleate): through real
HTTP JSON-RPC to the simulated lab's daemon, and in the lab file's validation."""

from __future__ import annotations

import pytest

from hardware_interface.labconfig import ConfigError, parse_config, sim_config_data
from hardware_interface.server import start_daemon
from tests.hardware.test_daemon_http import Client


@pytest.fixture
def client():
    handle = start_daemon(sim=True, port=0, seed=1, watchdog_s=0)
    yield Client(handle.url)
    handle.stop()


def test_fill_by_alias_draws_from_the_bottle_it_names(client):
    before = client.ok("reagent.stock")
    assert before["Cs-oleate"]["aliases"] == ["Cs-Precursor", "R1"]
    assert before["PbBr2"]["aliases"] == ["Pb-Precursor", "R2"] and before["ODE"]["aliases"] == [
        "R3"
    ]
    client.ok("pump.fill", pump="SP1", reagent="Cs-Precursor", volume_mL=0.1)
    after = client.ok("reagent.stock")
    assert after["Cs-oleate"]["stock_mL"] == pytest.approx(before["Cs-oleate"]["stock_mL"] - 0.1)
    assert client.ok("pump.status", pump="SP1")["reagent"] == "Cs-oleate"
    # an alias of another bottle is still the wrong reagent for this pump, named as written
    error = client.error("pump.fill", pump="SP1", reagent="Pb-Precursor", volume_mL=0.1)
    assert error["code"] == -32006 and "Pb-Precursor" in error["message"], error
    described = client.ok("system.describe")["reagents"]
    assert described["PbBr2"]["aliases"] == ["Pb-Precursor", "R2"]


def test_refill_by_alias(client):
    before = client.ok("reagent.stock")["PbBr2"]["stock_mL"]
    reply = client.ok("reagent.refill", reagent="Pb-Precursor", added_mL=2.0)
    assert reply["reagent"] == "PbBr2" and reply["stock_mL"] == pytest.approx(before + 2.0)


@pytest.mark.parametrize(
    ("aliases", "words"),
    [
        (["PbBr2"], "already names a stock bottle"),  # another bottle's own name
        (["x", "x"], "already names a stock bottle"),
        ("Cs-Precursor", "must be a list"),
        ([""], "must be a list of names"),
    ],
)
def test_bad_aliases_are_refused_naming_the_entry(aliases, words):
    data = sim_config_data()
    data["reagents"]["Cs-oleate"]["aliases"] = aliases
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "lab.json")
    assert "lab.json: reagents.Cs-oleate.aliases" in str(caught.value)
    assert words in str(caught.value)

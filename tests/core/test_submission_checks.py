"""A request the lab cannot run is refused when it is submitted, not after it waited its turn
(issue 18, items 5 and 6): the stock for the whole budget and the lab's limits over the whole
search space, both from the daemon's own ``system.describe``."""

from __future__ import annotations

from sqlalchemy import func, select

from maosic.db.models import Request
from tests.core.rpc_helpers import cspbbr3_config, rpc
from tests.user_control.helpers import run


def _refusal(url: str, **params) -> dict:
    try:
        rpc(url, "request.submit", **params)
    except RuntimeError as exc:
        return exc.args[0]
    raise AssertionError(f"accepted: {params}")


def _count(db_sessions) -> int:
    with db_sessions() as session:
        return session.scalar(select(func.count()).select_from(Request))


def test_stock_and_limits_are_checked_at_submission(stack, sessions):
    url = stack.core_url
    # The simulated rig holds 20 mL of Cs-oleate, 1/15 mL an experiment: 300 experiments.
    error = _refusal(url, config=cspbbr3_config(), budget=400)
    assert error["code"] == -32602 and error["data"]["field"] == "budget"
    assert "Cs-oleate: 400 experiments need about 26.7 mL" in error["message"]
    assert "lower the budget to 300" in error["message"]

    hot = cspbbr3_config()
    hot["param"]["T"]["bound"] = [90, 220]  # the simulated heater's limit is 200 °C
    error = _refusal(url, config=hot, budget=5)
    assert error["code"] == -32602 and error["data"]["field"] == "config"
    assert (
        "H1 for setpoint_C = 220" in error["message"]
        and "outside the lab's limits" in (error["message"])
    )
    hot["param"]["T"]["bound"] = [90, 400]  # past the language's own HEAT range too
    error = _refusal(url, config=hot, budget=5)
    assert error["code"] == -32602 and "T = 400" in error["message"]
    assert _count(sessions) == 0

    accepted = rpc(url, "request.submit", config=cspbbr3_config(), budget=300)
    assert accepted["status"] == "queued" and _count(sessions) == 1


def test_after_an_operator_refill_the_same_request_is_accepted(stack, sessions, tmp_path):
    url, hw = stack.core_url, ["--hardware-url", stack.hardware_url]
    error = _refusal(url, config=cspbbr3_config(), budget=450)
    assert "lower the budget to 300" in error["message"] and _count(sessions) == 0

    status = run([*hw, "status"], tmp_path)
    assert status.status == 0 and "stock: Cs-oleate 20.00 mL" in status.out, status.out
    refilled = run([*hw, "reagent", "refill", "Cs-oleate", "10"], tmp_path)
    assert refilled.status == 0, refilled.err
    assert refilled.out.strip() == "Cs-oleate: 10 mL added, stock 30.000 mL"
    unknown = run([*hw, "reagent", "refill", "Unobtainium", "10"], tmp_path)
    assert unknown.status == 1 and "no stock bottle of 'Unobtainium'" in unknown.err
    error = _refusal(url, config=cspbbr3_config(), budget=450)  # PbBr2 is short as well
    assert "PbBr2: 450 experiments" in error["message"] and _count(sessions) == 0
    assert run([*hw, "reagent", "refill", "PbBr2", "20"], tmp_path).status == 0
    absurd = run([*hw, "reagent", "refill", "ODE", "1e6"], tmp_path)
    assert absurd.status == 1 and "added_mL" in absurd.err

    accepted = rpc(url, "request.submit", config=cspbbr3_config(), budget=450)
    assert accepted["status"] == "queued" and _count(sessions) == 1

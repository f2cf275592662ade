"""New request form (stored / formula / upload), the live formula check, reaction prefill."""

from __future__ import annotations

import io
import json

from sqlalchemy import select

from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic.db.models import Reaction
from tests.cloud.conftest import login
from tests.cloud.helpers import EXAMPLES

FORMULA = (EXAMPLES / "cspbbr3.formula").read_text(encoding="utf-8")


def _form(**extra):
    data = {
        "metric": "cd_first_exciton",
        "budget": "12",
        "optimizer": "snobfit",
        "seed": "3",
    }
    data.update(extra)
    return data


def _reaction_id(web_sessions) -> int:
    with web_sessions() as session:
        return session.scalars(select(Reaction).where(Reaction.name.like("%CsPbBr3%"))).first().id


def test_form_lists_the_cspbbr3_reaction_preselected(client, web_sessions):
    login(client, "demo")
    page = client.get("/requests/new").data.decode()
    rid = _reaction_id(web_sessions)
    assert f'<option selected value="{rid}">' in page or f'value="{rid}" selected' in page
    assert "cd_first_exciton" in page and "snobfit" in page


def test_submit_stored_reaction_with_edited_space(client, web_sessions, fake_core):
    login(client, "demo")
    rid = _reaction_id(web_sessions)
    reply = client.post(
        "/requests/new",
        data=_form(
            source="stored",
            reaction_id=str(rid),
            **{"space-0-name": "T", "space-0-low": "100", "space-0-high": "150", "space-0-dx": "1"},
        ),
    )
    assert reply.status_code == 302 and reply.headers["Location"] == "/requests/1000"
    method, params = fake_core.calls[-1]
    assert method == "request.submit"
    assert "owner" not in params and fake_core.as_users[-1] == "demo"
    assert params["budget"] == 12 and params["seed"] == 3
    assert params["target"] == {"metric": "cd_first_exciton"}
    assert params["config"]["param"]["T"]["bound"] == [100, 150]
    assert params["config"]["param"]["T"]["dx"] == 1
    assert params["config"]["param"]["C"]["bound"] == [0.2, 1.2]  # untouched


def test_submit_formula_sends_formula_and_space(client, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data=_form(
            source="formula",
            formula="H[$T, 10, 60]",
            name="my heat test",
            **{
                "space-0-name": "$T",
                "space-0-low": "90",
                "space-0-high": "180",
                "space-0-dx": "0.5",
            },
        ),
    )
    assert reply.status_code == 302
    _, params = fake_core.calls[-1]
    assert params["formula"] == "H[$T, 10, 60]"
    assert params["space"] == {"T": {"bound": [90, 180], "dx": 0.5}}
    assert params["name"] == "my heat test" and "config" not in params


def test_submit_upload(client, fake_core):
    login(client, "demo")
    config = (EXAMPLES / "cspbbr3.json").read_bytes()
    reply = client.post(
        "/requests/new",
        data=_form(source="upload", config_file=(io.BytesIO(config), "cspbbr3.json")),
        content_type="multipart/form-data",
    )
    assert reply.status_code == 302
    _, params = fake_core.calls[-1]
    assert json.loads(params["config"])["name"] == json.loads(config)["name"]


def test_form_errors_are_named(client, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new", data=_form(source="formula", formula="R1·SP1[0.1, 0, 0.1] × H[$T]")
    )
    assert reply.status_code == 400
    assert "needs its search space" in reply.data.decode()
    # a broken formula is said first, in the formula's terms
    reply = client.post(
        "/requests/new", data=_form(source="formula", formula="R1·SP1[0.1, 0, 0.1] × H[400]")
    )
    assert reply.status_code == 400
    assert "line 1, column 25" in reply.data.decode() and "[20, 250]" in reply.data.decode()
    reply = client.post(
        "/requests/new",
        data=_form(
            source="formula",
            formula="H[$T]",
            **{"space-0-name": "T", "space-0-low": "5", "space-0-high": "1"},
        ),
    )
    assert "row 1 (T): lower bound must be below upper" in reply.data.decode()
    reply = client.post("/requests/new", data=_form(source="upload"))
    assert "choose a configuration file" in reply.data.decode()
    reply = client.post("/requests/new", data=_form(source="stored", budget="0"))
    assert reply.status_code == 400 and "Number must be between" in reply.data.decode()
    assert not [c for c in fake_core.calls if c[0] == "request.submit"]


def test_core_errors_show_line_and_column(client, fake_core):
    login(client, "demo")
    fake_core.fail_with = RpcFailure(
        -32602,
        "unknown module symbol 'HX'",
        {"field": "formula", "line": 2, "column": 7, "message": "unknown module symbol 'HX'"},
    )
    reply = client.post(
        "/requests/new",
        data=_form(
            source="formula",
            formula="x\nHX[1]",
            **{"space-0-name": "T", "space-0-low": "1", "space-0-high": "2"},
        ),
    )
    page = reply.data.decode()
    assert reply.status_code == 400
    assert "unknown module symbol" in page and "line 2, column 7" in page


def test_core_down_is_reported(client, fake_core):
    login(client, "demo")
    fake_core.fail_with = RpcUnavailable("connection refused")
    page = client.get("/requests/new").data.decode()
    assert "core is not reachable" in page
    reply = client.post("/requests/new", data=_form(source="stored", reaction_id="1"))
    assert "core is not reachable" in reply.data.decode()


def test_formula_check_endpoint(client):
    login(client, "demo")
    ok = client.post("/api/formula/check", json={"formula": FORMULA}).get_json()
    assert ok["ok"] is True
    assert {"C", "T"} <= set(ok["variables"])
    assert "PUMP_PARALLEL" in ok["codes"] or "PUMP" in ok["codes"]
    broken = "R1·SP1[0.1, 0, 0.1] × H[100, 10, 60]\n | ABS-CD[100] | QQ[1]"
    bad = client.post("/api/formula/check", json={"formula": broken}).get_json()
    assert bad["ok"] is False
    assert bad["error"]["line"] == 2 and bad["error"]["column"] == 18
    assert "QQ" in bad["error"]["message"]
    assert client.post("/api/formula/check", data="nope").status_code == 400
    too_long = client.post("/api/formula/check", json={"formula": "H" * 30_000})
    assert too_long.status_code == 400


def test_reaction_json_prefill(client, web_sessions):
    login(client, "demo")
    rid = _reaction_id(web_sessions)
    data = client.get(f"/reactions/{rid}.json").get_json()
    assert data["space"]["T"] == {"bound": [90.0, 180.0], "dx": 0.5}
    assert "Q" not in data["space"]  # constants are not part of the search space
    assert client.get("/reactions/99999.json").status_code == 404


def test_formula_row_with_equal_bounds_is_held_fixed(client, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data=_form(
            source="formula",
            formula=FORMULA,
            name="fixed C",
            **{"space-0-name": "$T", "space-0-low": "90", "space-0-high": "180"},
            **{"space-0-dx": "0.5", "space-1-name": "C"},
            **{"space-1-low": "0.4", "space-1-high": "0.4"},
        ),
    )
    assert reply.status_code == 302, reply.data.decode()[:2000]
    params = fake_core.calls[-1][1]
    # the rows go with the formula; the core lays them over the formula's own vary/fix lines
    assert params["formula"] == FORMULA and params["name"] == "fixed C"
    assert params["space"] == {"T": {"bound": [90, 180], "dx": 0.5}, "C": {"fixed": 0.4}}


def test_formula_with_every_row_fixed_is_refused(client, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data=_form(
            source="formula",
            formula="R1·SP1[0.1, 0, 0.1] × H[$T]",  # no vary lines of its own
            **{"space-0-name": "T", "space-0-low": "120", "space-0-high": "120"},
        ),
    )
    assert reply.status_code == 400
    assert "two different bounds" in reply.data.decode()
    assert [m for m, _ in fake_core.calls if m == "request.submit"] == []


def test_stored_reaction_row_with_equal_bounds_becomes_a_constant(client, web_sessions, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data=_form(
            source="stored",
            reaction_id=str(_reaction_id(web_sessions)),
            **{"space-0-name": "C", "space-0-low": "0.8", "space-0-high": "0.8"},
        ),
    )
    assert reply.status_code == 302
    param = fake_core.calls[-1][1]["config"]["param"]
    assert param["C"]["var"] == 0 and param["C"]["default"] == 0.8
    assert param["T"]["var"] == 1


def test_upload_left_to_the_file_ignores_the_rows_and_sends_no_target(client, fake_core):
    """Target and optimizer "as the configuration says" (the first choice) send neither, so the
    file's own metric (any form, e.g. the paper's array) and optimizer with its options rule;
    the space rows belong to other sources and are not checked."""
    login(client, "demo")
    page = client.get("/requests/new").data.decode()
    assert '<option selected value="">as the configuration says' in page.replace(
        'value="" selected', 'selected value=""'
    )
    config = (EXAMPLES / "fig_s10.json").read_bytes()
    reply = client.post(
        "/requests/new",
        data=_form(
            source="upload",
            metric="",
            optimizer="",
            config_file=(io.BytesIO(config), "fig_s10.json"),
            **{"space-0-name": "temp", "space-0-low": "9", "space-0-high": "1"},
        ),
        content_type="multipart/form-data",
    )
    assert reply.status_code == 302, reply.data.decode()[-1500:]
    _, params = fake_core.calls[-1]
    assert params["target"] is None and params["optimizer"] is None
    assert json.loads(params["config"])["metric"] == ["CD", ["wavelength", "peak"]]


def test_a_zero_resolution_row_is_continuous(client, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data=_form(
            source="formula",
            formula="H[$T, 10, 60]",
            **{"space-0-name": "T", "space-0-low": "90", "space-0-high": "180", "space-0-dx": "0"},
        ),
    )
    assert reply.status_code == 302
    assert fake_core.calls[-1][1]["space"] == {"T": {"bound": [90, 180], "dx": 0}}


def test_moved_bounds_move_the_start_value_into_them(client, web_sessions, fake_core):
    """Bounds -50..20 for a stored reaction's T (default 130): the request starts inside the
    user's bounds instead of failing on a default the user never wrote."""
    login(client, "demo")
    rid = _reaction_id(web_sessions)
    reply = client.post(
        "/requests/new",
        data=_form(
            source="stored",
            reaction_id=str(rid),
            **{"space-0-name": "T", "space-0-low": "-50", "space-0-high": "20"},
        ),
    )
    assert reply.status_code == 302, reply.data.decode()[-1500:]
    assert fake_core.calls[-1][1]["config"]["param"]["T"]["default"] == -15


def test_a_formula_file_upload_goes_as_a_formula(client, fake_core):
    login(client, "demo")
    text = (EXAMPLES / "cspbbr3.formula").read_bytes()
    reply = client.post(
        "/requests/new",
        data=_form(source="upload", config_file=(io.BytesIO(text), "cspbbr3.formula")),
        content_type="multipart/form-data",
    )
    assert reply.status_code == 302
    params = fake_core.calls[-1][1]
    assert params["formula"] == text.decode() and "config" not in params


def test_an_upload_over_the_limit_gets_the_form_back_naming_the_limit(app, client, fake_core):
    login(client, "demo")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    big = io.BytesIO(b"{" + b" " * 4096 + b"}")
    reply = client.post(
        "/requests/new",
        data=_form(source="upload", config_file=(big, "big.json")),
        content_type="multipart/form-data",
    )
    page = reply.data.decode()
    assert reply.status_code == 413
    assert 'id="request-form"' in page and "limit of 1 kB" in page

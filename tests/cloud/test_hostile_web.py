"""Hostile numbers at the web site (issue 17, door 5): 400 or 404, never HTTP 500."""

from __future__ import annotations

from tests.cloud.conftest import login

HUGE = 10**20


def test_the_web_site_answers_hostile_numbers_with_400_or_404(client):
    login(client, "demo")
    for path in ("/requests/100000000000000000000", "/requests/9223372036854775808/data.json",
                 "/requests/1/experiments/100000000000000000000"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    form = {"source": "stored", "reaction_id": "1", "budget": "5", "metric": "x",
            "optimizer": "random", "seed": str(HUGE),
            "space-0-name": "T", "space-0-low": "1e400", "space-0-high": "2"}  # fmt: skip
    reply = client.post("/requests/new", data=form)
    assert reply.status_code == 400
    check = client.post("/api/formula/check", json={"formula": "R" + "9" * 5000 + "·SP1"})
    assert check.status_code == 200 and check.get_json()["ok"] is False
    assert check.get_json()["error"]["line"] == 1

"""Offline characterization on the web (issue 21): the owner attaches values and files on the
experiment page, downloads come back as attachments of their sniffed type, a colleague the
request is shared with sees but cannot add, and the calibration page shows the fit."""

from __future__ import annotations

import html
import io
import json
import re

import pytest
from scipy import stats
from sqlalchemy import select

from cloud import create_app
from maosic import attachments
from maosic.db.models import Attachment, Experiment, Feature, Request, RequestShare, User
from maosic.db.session import transaction
from tests.cloud.conftest import login
from tests.cloud.helpers import add_run

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200))
PROXY = [1.0, 2.0, 3.0, 4.5]
ABSOLUTE = [12.0, 19.5, 31.0, 44.0]


@pytest.fixture
def demo_run(web_sessions) -> int:
    return add_run(web_sessions, "demo", n_experiments=4)


def _register(app, name: str):
    client = app.test_client()
    reply = client.post(
        "/register", data={"username": name, "password": "0123456789", "confirm": "0123456789"}
    )
    assert reply.status_code == 302
    return client


def _share(sessions, request_id: int, username: str) -> None:
    with transaction(sessions) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        session.add(RequestShare(request_id=request_id, user_id=user.id))


def _attach(client, run: int, number: int, **fields):
    data = {"kind": "note", "name": "", "value": "", "unit": "", **fields}
    return client.post(
        f"/requests/{run}/experiments/{number}/attachments",
        data=data,
        content_type="multipart/form-data",
    )


def _stored(sessions) -> list[Attachment]:
    with sessions() as session:
        return list(session.scalars(select(Attachment).order_by(Attachment.id)))


def test_owner_adds_and_downloads(app, client, web_sessions, demo_run):
    login(client, "demo")
    page = client.get(f"/requests/{demo_run}/experiments/1").data.decode()
    assert 'id="attachment-form"' in page and 'id="no-attachments"' in page
    reply = _attach(client, demo_run, 1, kind="absolute_plqy", name="sphere", value="42.5")
    assert reply.status_code == 302 and reply.location.endswith("#attachments")
    reply = _attach(
        client, demo_run, 1, kind="tem_image", name="TEM 50k", file=(io.BytesIO(PNG), "tem.png")
    )
    assert reply.status_code == 302
    # larger than the site's 2 MB form limit, within the attachments' 10 MB
    big = PNG + bytes(5 * 2**20)
    reply = _attach(client, demo_run, 2, kind="xrd_pattern", file=(io.BytesIO(big), "x.png"))
    assert reply.status_code == 302
    rows = _stored(web_sessions)
    assert [(r.kind, r.value, r.unit) for r in rows] == [
        ("absolute_plqy", 42.5, "%"),
        ("tem_image", None, None),
        ("xrd_pattern", None, None),
    ]
    assert rows[2].size_bytes == len(big)

    page = client.get(f"/requests/{demo_run}/experiments/1").data.decode()
    assert 'id="attachment-list"' in page and "42.5 %" in page and "TEM 50k" in page
    link = re.search(r'class="download" href="([^"]+)"', page).group(1)
    download = client.get(html.unescape(link))
    assert download.status_code == 200 and download.data == PNG
    assert download.mimetype == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "tem.png" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    # an attachment of experiment 1 is not reachable through experiment 2's address
    elsewhere = html.unescape(link).replace("/experiments/1/", "/experiments/2/")
    assert client.get(elsewhere).status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "tem_image", "file": (b"<!DOCTYPE html><script>x</script>", "a.png")},
        {"kind": "absolute_plqy", "value": "150"},
        {"kind": "note", "value": "nan"},
        {"kind": "evil", "value": "1"},
    ],
)
def test_refused_uploads_store_nothing(app, client, web_sessions, demo_run, fields):
    login(client, "demo")
    if "file" in fields:  # a fresh stream for each run (the parameters are shared)
        fields = {**fields, "file": (io.BytesIO(fields["file"][0]), fields["file"][1])}
    reply = _attach(client, demo_run, 1, **fields)
    assert reply.status_code == 302
    page = client.get(reply.location).data.decode()
    assert "Not attached:" in page
    assert _stored(web_sessions) == []


def test_an_upload_over_the_limit_is_refused(app, client, web_sessions, demo_run):
    login(client, "demo")
    big = PNG + bytes(attachments.MAX_FILE_BYTES + 2**20)
    reply = _attach(client, demo_run, 1, kind="tem_image", file=(io.BytesIO(big), "t.png"))
    assert reply.status_code == 413
    assert _stored(web_sessions) == []


def test_a_colleague_sees_but_cannot_add(app, client, web_sessions, demo_run):
    login(client, "demo")
    reply = _attach(client, demo_run, 1, kind="tem_image", file=(io.BytesIO(PNG), "t.png"))
    assert reply.status_code == 302
    colleague = _register(app, "colleague")
    stranger = _register(app, "stranger")
    _share(web_sessions, demo_run, "colleague")
    page = colleague.get(f"/requests/{demo_run}/experiments/1").data.decode()
    assert 'id="attachment-list"' in page and 'id="attachment-form"' not in page
    link = html.unescape(re.search(r'class="download" href="([^"]+)"', page).group(1))
    assert colleague.get(link).data == PNG
    reply = _attach(colleague, demo_run, 1, kind="absolute_plqy", value="10")
    assert reply.status_code == 403
    assert stranger.get(link).status_code == 404
    assert _attach(stranger, demo_run, 1, kind="absolute_plqy", value="10").status_code == 404
    assert len(_stored(web_sessions)) == 1


def _calibration_data(sessions, run: int) -> int:
    """plqy_proxy features and absolute PLQY values on the run's experiments."""
    with transaction(sessions) as session:
        request = session.get(Request, run)
        for e, proxy, absolute in zip(request.experiments, PROXY, ABSOLUTE, strict=True):
            session.add(Feature(experiment_id=e.id, name="plqy_proxy", value=proxy, unit="a.u."))
            attachments.add(session, e.id, None, "absolute_plqy", value=absolute)
        return request.reaction_id


def test_the_calibration_page_shows_the_fit(app, client, web_sessions, demo_run):
    reaction_id = _calibration_data(web_sessions, demo_run)
    login(client, "demo")
    page = client.get(f"/reactions/{reaction_id}/calibration").data.decode()
    expected = stats.linregress(PROXY, ABSOLUTE)

    def shown(ident: str) -> float:
        return float(re.search(rf'id="{ident}" data-value="([^"]+)"', page).group(1))

    assert shown("fit-slope") == pytest.approx(expected.slope, rel=1e-6)
    assert shown("fit-intercept") == pytest.approx(expected.intercept, rel=1e-6)
    assert shown("fit-slope-se") == pytest.approx(expected.stderr, rel=1e-6)
    assert shown("fit-intercept-se") == pytest.approx(expected.intercept_stderr, rel=1e-6)
    assert 'id="fit-n">4<' in page
    target = json.loads(html.unescape(re.search(r'id="calibrated-target">([^<]+)<', page).group(1)))
    assert target["metric"] == "max_plqy"
    assert target["calibration"]["slope"] == pytest.approx(expected.slope, rel=1e-6)
    plot = json.loads(re.search(r'id="calibration-data">([^<]+)<', page).group(1))
    assert len(plot["pairs"]) == 4 and len(plot["line"]) == 2

    colleague = _register(app, "colleague")
    assert colleague.get(f"/reactions/{reaction_id}/calibration").status_code == 404
    _share(web_sessions, demo_run, "colleague")
    assert 'id="fit-slope"' in colleague.get(f"/reactions/{reaction_id}/calibration").data.decode()
    assert client.get("/reactions/999999/calibration").status_code == 404


def test_no_fit_below_three_pairs(app, client, web_sessions, demo_run):
    with transaction(web_sessions) as session:
        first = session.scalars(
            select(Experiment).where(Experiment.request_id == demo_run, Experiment.number == 1)
        ).one()
        session.add(Feature(experiment_id=first.id, name="plqy_proxy", value=1.0))
        attachments.add(session, first.id, None, "absolute_plqy", value=5.0)
        reaction_id = session.get(Request, demo_run).reaction_id
    login(client, "demo")
    page = client.get(f"/reactions/{reaction_id}/calibration").data.decode()
    assert 'id="no-fit"' in page and 'id="calibrated-target"' not in page


def test_a_large_upload_passes_csrf_protection(db_url, web_sessions, demo_run, log_key):
    """CSRF protection reads the form before any view: it must read it under the attachment
    form's own limit (10 MB), not the site's 2 MB, and still refuse a post without a token."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "csrf-secret",
            "CORE_URL": "http://127.0.0.1:9/",
            "CORE_TOKEN": "test-installation-token",
            "LOG_KEY_FILE": str(log_key),
        }
    )
    try:
        client = app.test_client()
        login_page = client.get("/login").data.decode()
        token = re.search(r'name="csrf-token" content="([^"]+)"', login_page).group(1)
        reply = client.post(
            "/login",
            data={"username": "demo", "password": "demo-password", "csrf_token": token},
        )
        assert reply.status_code == 302
        page = client.get(f"/requests/{demo_run}/experiments/1").data.decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        big = PNG + bytes(6 * 2**20)
        file = (io.BytesIO(big), "tem.png")
        assert _attach(client, demo_run, 1, kind="tem_image", file=file).status_code == 400
        file = (io.BytesIO(big), "tem.png")
        reply = _attach(client, demo_run, 1, kind="tem_image", file=file, csrf_token=token)
        assert reply.status_code == 302
        assert [r.size_bytes for r in _stored(web_sessions)] == [len(big)]
        # the site's own limit still holds everywhere else
        assert client.post("/api/formula/check", data=bytes(3 * 2**20)).status_code == 413
    finally:
        app.extensions["maosic_web"].engine.dispose()

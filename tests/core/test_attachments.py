"""Offline characterization (issue 21): values and files attached to an experiment, hostile
uploads refused, the proxy -> absolute PLQY calibration fitted with its uncertainties, a
calibrated target scoring a real run on the simulated lab, and attachments in the RO-Crate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import select

from hardware_interface.server import start_daemon
from maosic import attachments
from maosic.analysis.errors import SpectrumError
from maosic.analysis.reward import check_target, reward_unit
from maosic.attachments import AttachmentError
from maosic.crate_export import ATTACHMENTS_FILE, AuditChoice, write_crate
from maosic.crate_import import CrateSource, check_crate
from maosic.db.models import (
    Attachment,
    Experiment,
    ExperimentStatus,
    Feature,
    Request,
    RequestStatus,
    User,
)
from maosic.db.repository import get_or_create_reaction
from maosic.db.session import transaction
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from tests.core.campaign_helpers import worker
from tests.core.rpc_helpers import EXAMPLES

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
CALIBRATED = {"metric": "max_plqy", "calibration": {"intercept": 5.0, "slope": 2.0}}


def _cu_config() -> dict:
    return json.loads((EXAMPLES / "cs3cu2i5.json").read_text(encoding="utf-8"))


def _run_with(session, proxies: list[float | None], seq: int = 1) -> Request:
    """A finished cs3cu2i5 request whose experiments carry these plqy_proxy features."""
    user = session.scalars(select(User).where(User.username == "chemist")).first()
    if user is None:
        user = User(username="chemist", password_hash="x")
        session.add(user)
        session.flush()
    reaction, _ = get_or_create_reaction(session, _cu_config())
    request = Request(
        seq=seq,
        owner_id=user.id,
        reaction_id=reaction.id,
        target={"metric": "max_plqy"},
        budget=len(proxies),
        optimizer="random",
        status=RequestStatus.DONE,
    )
    session.add(request)
    session.flush()
    for n, proxy in enumerate(proxies, start=1):
        e = Experiment(
            request_id=request.id,
            number=n,
            params={"T": 140.0},
            status=ExperimentStatus.DONE,
            reward=proxy,
        )
        session.add(e)
        session.flush()
        session.add(Feature(experiment_id=e.id, name="plqy_proxy", value=proxy, unit="a.u."))
    session.flush()
    return request


def test_values_and_files_are_stored_checked_and_listed(sessions):
    with transaction(sessions) as session:
        request = _run_with(session, [1.0, 2.0])
        first = request.experiments[0].id
        plqy = attachments.add(session, first, None, "absolute_plqy", "integrating sphere", "42.5")
        image = attachments.add(
            session, first, None, "tem_image", "TEM 50k", content=PNG, filename="C:\\lab\\tem.PNG"
        )
        xrd = attachments.add(
            session,
            first,
            None,
            "xrd_pattern",
            content=b"2theta,counts\n10,5\n10.02,7\n10.04,6\n",
            filename="../../etc/xrd.csv",
        )
    with sessions() as session:
        rows = attachments.list_for(session, first)
        assert [r.kind for r in rows] == ["absolute_plqy", "tem_image", "xrd_pattern"]
        assert rows[0].value == 42.5 and rows[0].unit == "%" and rows[0].content is None
        assert rows[1].content == PNG and rows[1].media_type == "image/png"
        assert rows[1].size_bytes == len(PNG) and len(rows[1].sha256) == 64
        assert rows[1].filename == "tem.PNG"  # shown only; the path parts are gone
        assert rows[2].media_type == "text/csv" and rows[2].filename == "xrd.csv"
        assert rows[2].name == "XRD pattern"  # a default label from the kind
        listed = attachments.summaries(session, [first])
        assert [r["id"] for r in listed] == [plqy.id, image.id, xrd.id]
        assert "content" not in listed[0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        # an HTML page named like an image: the bytes decide, not the name
        ({"kind": "tem_image", "content": b"<!DOCTYPE html><script>alert(1)</script>",
          "filename": "tem.png"}, "file"),
        ({"kind": "file", "content": b"<svg onload=alert(1)>", "filename": "x.png"}, "file"),
        ({"kind": "file", "content": b"\x7fELF\x02\x01\x01" + bytes(200), "filename": "a.tif"},
         "file"),
        ({"kind": "tem_image", "content": PNG + bytes(20 * 2**20)}, "file"),  # 20 MB
        ({"kind": "note", "value": float("nan")}, "value"),
        ({"kind": "note", "value": "inf"}, "value"),
        ({"kind": "absolute_plqy", "value": 150.0}, "value"),
        ({"kind": "absolute_plqy", "value": -1.0}, "value"),
        ({"kind": "absolute_plqy", "value": None}, "value"),
        ({"kind": "absolute_plqy", "value": 50.0, "unit": "a.u."}, "unit"),
        ({"kind": "tem_image"}, "file"),  # an image kind without its image
        ({"kind": "note"}, "value"),  # nothing at all
        ({"kind": "../../etc/passwd", "value": 1.0}, "kind"),
        ({"kind": "note", "value": 1.0, "name": "x" * 500}, "name"),
        ({"kind": "note", "value": 1.0, "name": "bad\x1b[31mname"}, "name"),
        ({"kind": "note", "value": True}, "value"),
    ],
)  # fmt: skip
def test_hostile_input_is_refused(sessions, kwargs, field):
    with transaction(sessions) as session:
        request = _run_with(session, [1.0])
        experiment_id = request.experiments[0].id
    with sessions() as session:
        with pytest.raises(AttachmentError) as caught:
            attachments.add(session, experiment_id, None, **kwargs)
        assert caught.value.field == field
        session.rollback()
    with sessions() as session:
        assert session.scalars(select(Attachment)).all() == []


def test_media_types_come_from_the_bytes():
    assert attachments.sniff(b"\xff\xd8\xff\xe0JFIF") == "image/jpeg"
    assert attachments.sniff(b"II*\x00rest") == "image/tiff"
    assert attachments.sniff(b"MM\x00*rest") == "image/tiff"
    assert attachments.sniff(b"%PDF-1.7\n") == "application/pdf"
    assert attachments.sniff(b"a note about the sample\n") == "text/plain"
    assert attachments.sniff(b"x\ty\n1\t2\n3\t4\n") == "text/csv"


def test_calibration_fit_matches_least_squares(sessions):
    rng = np.random.default_rng(7)
    proxy = np.linspace(0.5, 4.0, 8)
    absolute = 3.0 + 12.0 * proxy + rng.normal(0.0, 1.5, proxy.size)
    with transaction(sessions) as session:
        request = _run_with(session, [float(p) for p in proxy] + [9.0, None])
        for e, value in zip(request.experiments, absolute, strict=False):
            attachments.add(session, e.id, None, "absolute_plqy", value=float(value))
        # the 9th has a proxy but no absolute value; the 10th an absolute value but no proxy
        attachments.add(session, request.experiments[9].id, None, "absolute_plqy", value=50.0)
        reaction_id = request.reaction_id
        other = _run_with(session, [1.0], seq=2)  # the same reaction, another request
        attachments.add(session, other.experiments[0].id, None, "absolute_plqy", value=99.0)
        other_id, first_id = other.id, request.id
    with sessions() as session:
        found = attachments.calibration(session, reaction_id, request_ids=[first_id])
        everything = attachments.calibration(session, reaction_id)
        assert attachments.calibration(session, reaction_id, request_ids=[other_id]).fit is None
    assert len(found.pairs) == 8 and len(everything.pairs) == 9
    assert [p["proxy"] for p in found.pairs] == pytest.approx(proxy, rel=1e-6)
    # Checked against the numbers as stored (MariaDB's FLOAT keeps about 6 digits)
    proxy = np.array([p["proxy"] for p in found.pairs])
    absolute = np.array([p["absolute"] for p in found.pairs])
    fit = found.fit
    assert fit is not None and fit.n == 8
    expected = stats.linregress(proxy, absolute)
    assert fit.slope == pytest.approx(expected.slope, rel=1e-10)
    assert fit.intercept == pytest.approx(expected.intercept, rel=1e-10)
    assert fit.slope_se == pytest.approx(expected.stderr, rel=1e-8)
    assert fit.intercept_se == pytest.approx(expected.intercept_stderr, rel=1e-8)
    residuals = absolute - (expected.intercept + expected.slope * proxy)
    assert fit.residual_sd == pytest.approx(math.sqrt(np.sum(residuals**2) / 6), rel=1e-10)
    assert fit.r2 == pytest.approx(expected.rvalue**2, rel=1e-10)
    assert 10.0 < fit.slope < 14.0 and fit.slope_se < 1.0  # the true line, within its error
    assert check_target(fit.target()) == fit.target()


def test_no_fit_below_three_pairs_or_without_spread():
    assert attachments.fit_line([1.0, 2.0], [3.0, 4.0]) is None
    assert attachments.fit_line([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) is None
    exact = attachments.fit_line([1.0, 2.0, 3.0], [5.0, 7.0, 9.0])
    assert exact is not None
    assert (exact.intercept, exact.slope) == pytest.approx((3.0, 2.0))
    assert exact.residual_sd == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    "calibration",
    [
        {"intercept": 1.0},
        {"intercept": 1.0, "slope": 0.0},
        {"intercept": 1.0, "slope": -2.0},
        {"intercept": float("nan"), "slope": 1.0},
        {"intercept": 1.0, "slope": 1.0, "extra": 1},
        [1.0, 2.0],
    ],
)
def test_a_bad_calibration_is_refused_at_submission(calibration):
    with pytest.raises(SpectrumError) as caught:
        check_target({"metric": "max_plqy", "calibration": calibration})
    assert "calibration" in caught.value.where


def test_a_calibrated_target_scores_in_absolute_plqy(sessions, tmp_path):
    """On the simulated Cs3Cu2I5 lab the reward is a + b * the stored PLQY proxy (%)."""
    assert reward_unit(CALIBRATED) == "%" and reward_unit({"metric": "max_plqy"}) == "a.u."
    daemon = start_daemon(sim=True, chemistry="cs3cu2i5", port=0, seed=1, speed=0.0, watchdog_s=0)
    try:
        service = CoreService(sessions)
        rid = service.submit(
            INSTALLATION, config=_cu_config(), target=CALIBRATED, budget=3, seed=4,
            optimizer="random",
        )["id"]  # fmt: skip
        assert worker(sessions, daemon, tmp_path).run_once()
    finally:
        daemon.stop()
    with sessions() as session:
        request = session.get(Request, rid)
        assert request.status == RequestStatus.DONE, request.failure_reason
        assert request.target["calibration"] == CALIBRATED["calibration"]  # frozen with it
        done = [e for e in request.experiments if e.status == ExperimentStatus.DONE]
        assert done  # (the simulated chemistry may fail one with no emission peak)
        for e in done:  # rel 1e-5: MariaDB returns a FLOAT to 6 digits
            proxy = next(f.value for f in e.features if f.name == "plqy_proxy")
            assert proxy is not None and proxy > 0
            assert e.reward == pytest.approx(5.0 + 2.0 * proxy, rel=1e-5)
            assert e.reward != pytest.approx(proxy, rel=1e-3)  # not the bare proxy
            err = next(f.value for f in e.features if f.name == "plqy_proxy_err")
            assert e.reward_uncertainty == pytest.approx(2.0 * err, rel=1e-5)


def test_the_crate_carries_the_attachments(sessions, tmp_path):
    with transaction(sessions) as session:
        request = _run_with(session, [1.0, 2.0])
        attachments.add(session, request.experiments[0].id, None, "absolute_plqy", value=33.0)
        attachments.add(
            session, request.experiments[1].id, None, "tem_image", "TEM", content=PNG,
            filename="<img src=x>.png",
        )  # fmt: skip
        rid = request.id
    with sessions() as session:
        request = session.get(Request, rid)
        folder = write_crate(session, request, tmp_path / "crate", None, AuditChoice(None))
    records = json.loads((folder / ATTACHMENTS_FILE).read_text(encoding="utf-8"))
    assert [(r["experiment"], r["kind"], r["value"]) for r in records] == [
        (1, "absolute_plqy", 33.0),
        (2, "tem_image", None),
    ]
    assert records[0]["unit"] == "%" and "file" not in records[0]
    path = records[1]["file"]
    assert path.startswith("attachments/attachment-") and path.endswith(".png")
    assert (folder / path).read_bytes() == PNG
    metadata = json.loads((folder / "ro-crate-metadata.json").read_text(encoding="utf-8"))
    entities = {e["@id"]: e for e in metadata["@graph"]}
    assert entities[path]["encodingFormat"] == "image/png"
    assert entities[path]["contentSize"] == str(len(PNG))
    assert ATTACHMENTS_FILE in entities
    # such a crate imports (the attachments are the exporting lab's files: skipped)
    checked = check_crate(CrateSource(folder=folder))
    assert len(checked.experiments) == 2

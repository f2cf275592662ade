"""A target that cannot score an experiment is refused at submission, naming the field
(issue 19): before, `{"metric": "weighted"}` without terms, `window_nm: "wide"` or
`goal: "high"` were queued and failed only after the lab had run an experiment."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from maosic.analysis.errors import SpectrumError
from maosic.analysis.reward import check_target
from maosic.db.models import Request
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService, ServiceError
from tests.core.rpc_helpers import cspbbr3_config

BAD = [
    ({"metric": "weighted"}, "target.terms", "needs 'terms'"),
    ({"metric": "weighted", "terms": []}, "target.terms", "non-empty"),
    ({"metric": "max_abs_cd_at_exciton", "window_nm": "wide"}, "target.window_nm", "finite"),
    ({"metric": "max_abs_cd_at_exciton", "window_nm": -5}, "target.window_nm", "> 0"),
    ({"metric": "max_abs_cd_at_exciton", "goal": "high"}, "target.goal", "finite number"),
    ({"metric": "max_abs_cd_at_exciton", "goal": float("nan")}, "target.goal", "finite"),
    ({"metric": "max_abs_cd_at_exciton", "patience": 0}, "target.patience", "whole number"),
    ({"metric": "max_abs_cd_at_exciton", "patience": 2.5}, "target.patience", "whole number"),
    ({"metric": "max_abs_cd_at_exciton", "bogus": 1}, "target.bogus", "unknown option"),
    ({"metric": "target_wavelength"}, "target.wavelength_nm", "needs 'wavelength_nm'"),
    (
        {"metric": "target_wavelength", "wavelength_nm": 510, "source": "uv"},
        "target.source",
        "'absorbance' or 'pl'",
    ),  # fmt: skip
    ({"metric": "nope"}, "target.metric", "unknown metric"),
    (
        {"metric": "weighted", "terms": [{"metric": "max_pl_intensity", "scale": 0}]},
        "target.terms[0].scale",
        "> 0",
    ),
    (
        {"metric": "weighted", "terms": [{"metric": "weighted", "terms": []}]},
        "target.terms[0].metric",
        "cannot nest",
    ),
    (
        {"metric": "weighted", "terms": [{"metric": "max_plqy", "goal": 1}]},
        "target.terms[0].goal",
        "unknown option",
    ),
]


@pytest.mark.parametrize(("target", "where", "says"), BAD)
def test_a_bad_target_is_named(target, where, says):
    with pytest.raises(SpectrumError) as refused:
        check_target(target)
    assert refused.value.where == where and says in str(refused.value), str(refused.value)


def test_good_targets_pass_unchanged():
    for target in (
        {"metric": "max_abs_cd_at_exciton"},
        {"metric": "max_abs_cd_at_exciton", "window_nm": 15, "goal": 1.2, "patience": 20},
        {"metric": "target_wavelength", "wavelength_nm": 510, "source": "pl", "goal": None},
        {
            "metric": "weighted",
            "terms": [
                {"metric": "max_pl_intensity", "weight": 2, "scale": 1000},
                {"metric": "target_wavelength", "wavelength_nm": 450},
            ],
        },
    ):
        assert check_target(target) == target


@pytest.mark.parametrize(("target", "where", "says"), BAD[:6])
def test_the_core_refuses_it_before_queueing(sessions, target, where, says):
    service = CoreService(sessions)
    with pytest.raises(ServiceError) as refused:
        service.submit(INSTALLATION, config=cspbbr3_config(), target=target, budget=2)
    assert refused.value.field == "target" and where in str(refused.value)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 0

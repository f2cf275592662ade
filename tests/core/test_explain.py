"""What drove a result (issue 22): a surrogate on a request's experiments, SHAP importance and
direction, held-out R², the top-two-factor surface and the 'too clustered to trust' verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import qmc

from hardware_interface.sim import chemistry as ch
from maosic.db.models import Experiment, ExperimentStatus, Request, RequestStatus, User
from maosic.db.repository import get_or_create_reaction
from maosic.db.session import transaction
from maosic.explain import ExplainError, explain, explain_request, request_data

SPACE = ch.CS3CU2I5_SPACE
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The papers' SHAP signs on Cs3Cu2I5: PLQY rises with T, CuI, ZnI2 and falls with CsOA.
PAPER_SIGN = {"T": +1, "q_CuI": +1, "q_ZnI2": +1, "q_CsOA": -1}


def _measure(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array(
        [ch.cs3cu2i5_plqy_noisy(dict(zip(SPACE.names, row, strict=True)), rng) for row in x]
    )


@pytest.fixture(scope="module")
def lhs_request() -> tuple[np.ndarray, np.ndarray]:
    """A 60-point Latin-hypercube campaign on the Cs3Cu2I5 twin, measured with its noise."""
    x = qmc.scale(qmc.LatinHypercube(d=5, seed=1).random(60), SPACE.lower, SPACE.upper)
    return x, _measure(x, seed=1)


def test_a_latin_hypercube_campaign_recovers_the_papers_signs(lhs_request) -> None:
    x, y = lhs_request
    out = explain(x, y, SPACE.names, SPACE.lower, SPACE.upper, seed=0)
    assert out.verdict == "ok" and out.trustworthy and out.reasons == []
    assert out.method == "shap-exact"
    assert out.r2_heldout > 0.3 and out.folds == 4 and out.n == 60
    by_name = {f.name: f for f in out.factors}
    for name, sign in PAPER_SIGN.items():
        assert np.sign(by_name[name].direction) == sign, (name, by_name[name])
    assert out.factors[0].name == "q_CsOA"  # the papers' most important factor
    assert out.factors[-1].name == "q_ODE"  # and the one with no significant effect
    assert by_name["q_ODE"].importance < 0.1 * by_name["q_CsOA"].importance
    shap_values = np.array(out.shap_values)
    assert shap_values.shape == (60, 5)
    surface = out.surface
    assert {surface["x_name"], surface["y_name"]} == {out.factors[0].name, out.factors[1].name}
    z = np.array(surface["z"])
    assert z.shape == (25, 25) and np.all(np.isfinite(z))
    assert surface["x"][0] == pytest.approx(SPACE.lower[SPACE.names.index(surface["x_name"])])
    assert set(surface["fixed"]) == set(SPACE.names) - {surface["x_name"], surface["y_name"]}
    json.dumps(out.as_dict())  # a page or a CLI gets plain data


def test_an_optimizers_cluster_is_said_to_be_too_clustered() -> None:
    # 60 points around the optimum, as a converged optimizer leaves them
    centre = np.array([ch.CS3CU2I5_OPTIMUM[0][n] for n in SPACE.names])
    rng = np.random.default_rng(0)
    x = np.clip(centre + rng.normal(0.0, 4.0, (60, 5)), SPACE.lower, SPACE.upper)
    out = explain(x, _measure(x, seed=2), SPACE.names, SPACE.lower, SPACE.upper, seed=0)
    assert out.verdict == "too clustered" and not out.trustworthy
    assert out.discrepancy > out.discrepancy_random_p95
    assert any("less spread" in r for r in out.reasons)
    assert any("T was varied over only" in r for r in out.reasons)


def test_noise_is_a_poor_fit() -> None:
    x = qmc.scale(qmc.LatinHypercube(d=2, seed=3).random(30), [90.0, 0.2], [180.0, 1.2])
    y = np.random.default_rng(3).normal(size=30)
    out = explain(x, y, ["T", "C"], [90.0, 0.2], [180.0, 1.2], seed=0)
    assert out.verdict == "poor fit"
    assert out.r2_heldout < 0.3
    assert any("held-out" in r for r in out.reasons)
    again = explain(x, y, ["T", "C"], [90.0, 0.2], [180.0, 1.2], seed=0)
    assert again.as_dict() == out.as_dict()  # deterministic under the seed


def test_bad_input_is_refused() -> None:
    with pytest.raises(ExplainError, match="at least 8"):
        explain(np.zeros((5, 2)), np.zeros(5), ["a", "b"], [0, 0], [1, 1])
    with pytest.raises(ExplainError, match=r"x must be \(n, 2\)"):
        explain(np.zeros((10, 3)), np.zeros(10), ["a", "b"], [0, 0], [1, 1])
    with pytest.raises(ExplainError, match="upper > lower"):
        explain(np.zeros((10, 2)), np.zeros(10), ["a", "b"], [0, 1], [1, 1])


def test_a_requests_experiments_are_read_and_explained(sessions, lhs_request) -> None:
    x, y = lhs_request
    config = json.loads((EXAMPLES / "cs3cu2i5.json").read_text(encoding="utf-8"))
    with transaction(sessions) as session:
        user = User(username="explainer", password_hash="x")
        session.add(user)
        session.flush()
        reaction, _ = get_or_create_reaction(session, config)
        request = Request(
            seq=1,
            owner_id=user.id,
            reaction_id=reaction.id,
            target={"metric": "max_plqy"},
            budget=62,
            optimizer="lhs",
            status=RequestStatus.DONE,
        )
        session.add(request)
        session.flush()
        for n, (row, reward) in enumerate(zip(x, y, strict=True), start=1):
            params = {**dict(zip(SPACE.names, map(float, row), strict=True)), "t_eq": 180.0}
            session.add(
                Experiment(
                    request_id=request.id,
                    number=n,
                    params=params,
                    status=ExperimentStatus.DONE,
                    reward=float(reward),
                )
            )
        # a failed experiment and one without a reward are left out
        session.add(
            Experiment(
                request_id=request.id, number=61, params=params, status=ExperimentStatus.FAILED
            )
        )
        session.add(
            Experiment(
                request_id=request.id, number=62, params=params, status=ExperimentStatus.DONE
            )
        )
        request_id = request.id
    with sessions() as session:
        data = request_data(session, request_id)
        assert data["names"] == list(SPACE.names)  # the varied parameters, not t_eq
        assert data["lower"] == list(SPACE.lower) and data["upper"] == list(SPACE.upper)
        assert len(data["x"]) == len(data["y"]) == 60
        out = explain_request(session, request_id)
        assert out.n == 60 and out.factors[0].name == "q_CsOA"
        with pytest.raises(ExplainError, match="no request"):
            request_data(session, request_id + 100)

"""The ensemble-of-neural-networks optimizer: its networks, its policies and their schedule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from maosic.optimize import enn as enn_module
from maosic.optimize import make_optimizer
from maosic.optimize.enn import EnnOptimizer, EnsembleNN
from maosic.optimize.space import Space


def unit_space(step: float = 0.01) -> Space:
    return Space(["x1", "x2"], np.zeros(2), np.ones(2), np.full(2, step))


def bowl(p: dict[str, float]) -> float:
    return float((p["x1"] - 0.3) ** 2 + (p["x2"] - 0.6) ** 2)


def preloaded(policy: str, seed: int = 0) -> EnnOptimizer:
    space = unit_space()
    rng = np.random.default_rng(5)
    pts = [space.to_point(space.index_of_unit(z)) for z in rng.random((25, 2))]
    opt = make_optimizer("enn", space, seed=seed, policy=policy, n_initial=1)
    opt.preload(pts, [bowl(p) for p in pts])
    return opt


def test_gradient_of_the_stacked_training_loss_is_exact(monkeypatch) -> None:
    captured = {}
    real = enn_module.minimize

    def spy(fun, x0, **kwargs):
        captured["fun"] = fun
        captured["x0"] = x0
        return real(fun, x0, **kwargs)

    monkeypatch.setattr(enn_module, "minimize", spy)
    rng = np.random.default_rng(0)
    EnsembleNN(3, 4, 1e-2, 2).fit(rng.random((9, 3)), rng.random(9), np.random.default_rng(1))
    theta = captured["x0"] + 0.2 * rng.normal(size=captured["x0"].shape)
    _, grad = captured["fun"](theta)
    numeric = approx_fprime(theta, lambda t: captured["fun"](t)[0], 1e-7)
    assert np.max(np.abs(grad - numeric)) < 1e-4 * max(1.0, np.max(np.abs(grad)))


def test_ensemble_fits_and_is_less_sure_away_from_its_data() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((40, 1)) * 0.5  # data only on the left half
    y = np.sin(6 * x[:, 0])
    net = EnsembleNN(5, 16, 1e-3, 300).fit(x, y, np.random.default_rng(3))
    mu, sd = net.predict(x)
    assert np.sqrt(np.mean((mu - y) ** 2)) < 0.1 * np.std(y)
    _, sd_far = net.predict(np.array([[0.95], [1.0]]))
    assert sd_far.min() > 3 * np.median(sd)


def test_exploitation_goes_to_the_minimum_and_max_variance_away_from_the_data() -> None:
    eplt = preloaded("eplt")
    p = eplt.ask(1)[0]
    assert bowl(p) < 0.01
    mv = preloaded("mv")
    q = mv.ask(1)[0]
    data = mv.space.unit(np.array(mv._keys, dtype=float))
    gap = np.sqrt(((data - mv.space.unit(mv.space.index_of_point(q, "t"))) ** 2).sum(1)).min()
    # the networks disagree most where no data constrain them: far from the data (the median
    # distance of a random point to these 25 points is 0.095) and far from the minimum
    assert gap > 0.1 and bowl(q) > 0.3


def test_schedule_cycles_and_switches_for_the_last_experiments() -> None:
    opt = EnnOptimizer(unit_space(), policy="MV, ei", budget=20, final_steps=2)
    assert opt.policy == "mv,ei"
    assert [opt.policy_for(e, e) for e in range(16, 20)] == ["mv", "ei", "eplt", "eplt"]
    assert EnnOptimizer(unit_space(), policy="ucb").policy_for(10**6, 7) == "ucb"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"policy": "ei,greedy"}, r"unknown policies \['greedy'\]"),
        ({"final_policy": "ei,mv"}, "final_policy must be one policy"),
        ({"members": 1}, "members >= 2"),
        ({"budget": 0}, "budget must be >= 1"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_optimizer("enn", unit_space(), **options)


def test_a_batch_is_spread_out() -> None:
    opt = preloaded("eplt")
    batch = opt.ask(3)
    z = opt.space.unit(np.array([opt.space.index_of_point(p, "t") for p in batch], dtype=float))
    gaps = [np.linalg.norm(z[i] - z[j]) for i in range(3) for j in range(i)]
    # half the typical spacing of 25 points in 2-D: 0.5 / 5
    assert min(gaps) >= 0.1

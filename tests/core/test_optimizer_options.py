"""The configuration's optimizer options reach the optimizer, survive a restart, and unknown
options or bad values are refused at submission (issue 19: every field has its effect)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from maosic.db.models import Experiment, Request
from maosic.language.config import load_config
from maosic.optimize.registry import (
    OPTIMIZERS,
    make_optimizer,
    optimizer_options,
    restore_optimizer,
)
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService, ServiceError
from tests.core.campaign_helpers import config_with, start_sim_daemon, worker

BAYES_OPTIONS = optimizer_options("bayes")


@pytest.fixture
def sim_daemon():
    handle = start_sim_daemon()
    yield handle
    handle.stop()


def _run(sessions, daemon, tmp_path, config: dict, **submit) -> tuple[Request, list[dict]]:
    sub = CoreService(sessions).submit(INSTALLATION, config=config, **submit)
    assert worker(sessions, daemon, tmp_path).run_once()
    with sessions() as session:
        request = session.get(Request, sub["id"])
        params = list(
            session.scalars(
                select(Experiment.params)
                .where(Experiment.request_id == request.id)
                .order_by(Experiment.number)
            )
        )
        session.expunge(request)
    return request, params


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_option_is_kept_in_the_checkpoint(name):
    # A restart rebuilds the optimizer from state()["hyperparameters"]: an option missing there
    # would silently fall back to its default after a pause.
    space = load_config(config_with()).search_space()
    assert set(make_optimizer(name, space).hyperparameters()) == set(optimizer_options(name))


def test_lhs_design_size_reaches_the_running_campaign(sessions, sim_daemon, tmp_path):
    config = config_with(optimizer={"name": "lhs", "design_size": 20})
    request, params = _run(sessions, sim_daemon, tmp_path, config, budget=3, seed=7)
    assert request.status.value == "done" and request.optimizer == "lhs"
    assert request.optimizer_state["hyperparameters"] == {"design_size": 20}
    assert restore_optimizer(request.optimizer_state).design_size == 20  # a restart keeps it
    # the points run are those of a 20-point design, not of the default 250-point one
    space = load_config(config).search_space()
    assert params == make_optimizer("lhs", space, seed=7, design_size=20).ask(3)
    assert params != make_optimizer("lhs", space, seed=7).ask(3)


def test_another_optimizer_named_at_submission_runs_with_its_defaults(
    sessions, sim_daemon, tmp_path
):
    config = config_with(optimizer={"name": "lhs", "design_size": 20})
    other, _ = _run(sessions, sim_daemon, tmp_path, config, budget=1, optimizer="grid")
    assert other.optimizer == "grid"
    assert other.optimizer_state["hyperparameters"] == {"budget": 250, "levels": None}
    # naming the configuration's own optimizer keeps its options
    same, _ = _run(sessions, sim_daemon, tmp_path, config, budget=1, optimizer="lhs")
    assert same.optimizer_state["hyperparameters"] == {"design_size": 20}


def test_an_unknown_option_is_refused_naming_it_and_the_real_ones(sessions):
    with pytest.raises(ServiceError) as err:
        CoreService(sessions).submit(
            INSTALLATION, config=config_with(optimizer={"name": "bayes", "bogus": 1}), budget=2
        )
    assert err.value.field == "optimizer"
    assert err.value.message.startswith("optimizer 'bayes' has no option 'bogus'; its options are")
    assert err.value.message.endswith(", ".join(BAYES_OPTIONS))
    assert "explore_every" in err.value.message and "max_fit_points" in err.value.message
    assert err.value.detail == {"options": BAYES_OPTIONS}
    with pytest.raises(ServiceError, match="'random' has no option 'xi'; it takes no options"):
        CoreService(sessions).submit(
            INSTALLATION, config=config_with(optimizer={"name": "random", "xi": 1}), budget=2
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"design_size": 0}, "lhs: design_size must be >= 1, got 0"),
        ({"design_size": "20"}, "option 'design_size' must be a whole number, got '20'"),
        ({"design_size": 2.5}, "option 'design_size' must be a whole number, got 2.5"),
        ({"design_size": True}, "option 'design_size' must be a whole number, got True"),
    ],
)
def test_a_bad_option_value_is_refused_at_submission(sessions, options, message):
    config = config_with(optimizer={"name": "lhs", **options})
    with pytest.raises(ServiceError) as err:
        CoreService(sessions).submit(INSTALLATION, config=config, budget=2)
    assert err.value.field == "optimizer" and message in err.value.message
    with sessions() as session:
        assert session.scalars(select(Request)).first() is None  # nothing was queued


def test_values_the_optimizer_takes_are_accepted(sessions):
    options = {"name": "hybrid", "xi": 0, "schedule": "ei", "warp": False, "stall_window": 4}
    sub = CoreService(sessions).submit(INSTALLATION, config=config_with(optimizer=options))
    assert sub["optimizer"] == "hybrid"


def test_options_at_submission_are_refused_with_where_they_belong(sessions):
    with pytest.raises(ServiceError, match="belong in the reaction configuration's 'optimizer'"):
        CoreService(sessions).submit(
            INSTALLATION, config=config_with(), optimizer={"name": "lhs", "design_size": 5}
        )
    # the configuration's form without options is a name
    sub = CoreService(sessions).submit(
        INSTALLATION, config=config_with(), optimizer={"name": "lhs"}, budget=2
    )
    assert sub["optimizer"] == "lhs"


def test_enn_is_told_the_campaigns_length_unless_the_configuration_says(
    sessions, sim_daemon, tmp_path
):
    # "EI, then exploitation on the last experiment" (the fluidic labs' schedule) needs to know
    # which experiment is the last: the request's budget, when the configuration gives none
    request, _ = _run(sessions, sim_daemon, tmp_path, config_with(), budget=3, optimizer="enn")
    assert request.status.value == "done"
    assert request.optimizer_state["hyperparameters"]["budget"] == 3
    assert restore_optimizer(request.optimizer_state).policy_for(2, 0) == "eplt"
    given = config_with(optimizer={"name": "enn", "budget": 40})
    request, _ = _run(sessions, sim_daemon, tmp_path, given, budget=2)
    assert request.optimizer_state["hyperparameters"]["budget"] == 40
    # an optimizer without a schedule over the campaign is not given one
    other, _ = _run(sessions, sim_daemon, tmp_path, config_with(), budget=1, optimizer="lhs")
    assert "budget" not in other.optimizer_state["hyperparameters"]

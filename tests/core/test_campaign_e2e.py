"""A CsPbBr3 request submitted through port 9999 runs on the simulated lab through a real daemon."""

import numpy as np
from sqlalchemy import func, select

from cloud.rundata import fit_curve
from maosic.db.crypto import LogCipher
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Feature,
    HardwareCommand,
    PeakFit,
    Request,
    Spectrum,
)
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for


def test_request_runs_and_everything_is_stored(stack, sessions):
    url = stack.core_url
    first = rpc(url, "request.submit", config=cspbbr3_config(), budget=4, seed=3, as_user="demo")
    second = rpc(url, "request.submit", config=cspbbr3_config(), budget=2, seed=4)
    assert second["seq"] > first["seq"]
    # While the first runs, the second waits its turn.
    status = rpc(url, "request.status", id=second["id"])
    assert status["status"] == "queued" and status["position"] >= 1
    queue = rpc(url, "queue.list")
    assert [q["id"] for q in queue][:2] == [first["id"], second["id"]]

    done = wait_for(url, first["id"], {"done", "failed"})
    assert done["status"] == "done", done
    assert done["n_done"] == 4 and done["best_reward"] > 0
    assert set(done["best_params"]) == {"T", "C"}
    wait_for(url, second["id"], {"done", "failed"})

    with sessions() as session:
        experiments = session.scalars(
            select(Experiment).where(Experiment.request_id == first["id"])
        ).all()
        assert [e.number for e in experiments] == [1, 2, 3, 4]
        assert all(e.status == ExperimentStatus.DONE for e in experiments)
        for exp in experiments:
            kinds = {s.kind for s in exp.spectra}
            assert {"absorbance", "cd"} <= kinds
            assert all(
                s.n_points == len(s.value) == len(s.wavelength_nm) > 100 for s in exp.spectra
            )
            assert exp.reward is not None and exp.loss == -exp.reward
            assert 90 <= exp.params["T"] <= 180 and 0.2 <= exp.params["C"] <= 1.2
        n_fits = session.scalar(
            select(func.count())
            .select_from(PeakFit)
            .join(Spectrum)
            .join(Experiment)
            .where(Experiment.request_id == first["id"])
        )
        assert n_fits >= 4
        names = set(
            session.scalars(
                select(Feature.name).join(Experiment).where(Experiment.request_id == first["id"])
            )
        )
        assert "cd_at_exciton_mdeg" in names
        commands = session.scalars(
            select(HardwareCommand).where(HardwareCommand.request_id == first["id"])
        ).all()
        methods = {c.method for c in commands}
        assert {"pump.parallel", "heater.set", "spectrometer.cd"} <= methods
        cipher = LogCipher.from_file(stack.settings.resolved_log_key_file, create=False)
        heat = next(c for c in commands if c.method == "heater.set")
        assert b"setpoint" not in heat.params_enc  # encrypted at rest
        assert "setpoint_C" in cipher.decrypt_json(heat.params_enc)
        request = session.get(Request, first["id"])
        assert request.optimizer_state is not None and request.finished_at is not None
        # The stored fit redraws the measured absorbance (what the run page overlays) over the
        # range it was fitted on (a clipped UV plateau is left out of the fit).
        for spectrum in (s for e in experiments for s in e.spectra if s.kind == "absorbance"):
            fit = spectrum.fits[-1]
            lo, hi = fit.baseline["span_nm"]
            wl = np.asarray(spectrum.wavelength_nm)
            inside = (wl >= lo) & (wl <= hi)
            measured = np.asarray(spectrum.value)[inside]
            redrawn = np.asarray(fit_curve(fit, wl[inside].tolist()))
            rms = float(np.sqrt(np.mean((redrawn - measured) ** 2)))
            assert rms < 0.03 * float(np.max(np.abs(measured))), rms


def test_bad_submissions_name_the_field(stack):
    import pytest

    with pytest.raises(RuntimeError) as err:
        rpc(
            stack.core_url,
            "request.submit",
            formula="R1·SP1[0.2, 10, 0.5] × ",
            space={"T": {"bound": [90, 180]}},
        )
    assert err.value.args[0]["code"] == -32602
    assert err.value.args[0]["data"]["field"] == "formula"
    assert err.value.args[0]["data"]["column"] == 24  # the end, where an environment belongs
    with pytest.raises(RuntimeError) as err:
        rpc(stack.core_url, "request.submit", config=cspbbr3_config(), optimizer="magic")
    assert err.value.args[0]["data"]["field"] == "optimizer"
    with pytest.raises(RuntimeError) as err:
        rpc(stack.core_url, "request.submit", config=cspbbr3_config(), budget=0)
    assert err.value.args[0]["data"]["field"] == "budget"
    with pytest.raises(RuntimeError) as err:
        rpc(stack.core_url, "request.status", id=99999)
    assert err.value.args[0]["code"] == -32040


def test_cancel_stops_after_current_experiment(stack):
    url = stack.core_url
    sub = rpc(url, "request.submit", config=cspbbr3_config(), budget=200, seed=1)
    wait_for(url, sub["id"], {"running"})
    rpc(url, "request.cancel", id=sub["id"])
    final = wait_for(url, sub["id"], {"cancelled"})
    assert final["n_done"] < 200 and final["stop_reason"] == "cancelled by the user"

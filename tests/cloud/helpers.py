"""Fixtures' building blocks for the web tests: a fake core and rows of a finished run."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.rpc_client import RpcFailure
from maosic.db.crypto import LogCipher
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Feature,
    HardwareCommand,
    PeakFit,
    Reaction,
    Request,
    RequestStatus,
    Spectrum,
    User,
)
from maosic.db.repository import get_or_create_reaction
from maosic.db.session import transaction

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def cspbbr3_reaction(session: Session) -> Reaction:
    """The example CsPbBr3 reaction, stored if the seed has not stored it."""
    config = json.loads((EXAMPLES / "cspbbr3.json").read_text(encoding="utf-8"))
    reaction, _ = get_or_create_reaction(session, config)
    return reaction


@dataclass
class FakeCore:
    """Stands in for the core's JSON-RPC handler; records every call."""

    url: str = "http://fake-core/"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    as_users: list[str | None] = field(default_factory=list)  # the account of each call
    fail_with: RpcFailure | None = None
    next_id: int = 1000

    def call(self, method: str, *, as_user: str | None = None, **params: Any) -> Any:
        self.calls.append((method, params))
        self.as_users.append(as_user)
        if self.fail_with is not None:
            raise self.fail_with
        if method == "core.describe":
            return {
                "optimizers": ["snobfit", "random"],
                "default_optimizer": "snobfit",
                "metrics": {"cd_first_exciton": "|CD| at the first exciton peak"},
            }
        if method == "request.submit":
            return {"id": self.next_id, "seq": 1, "position": 1, "status": "queued"}
        if method == "request.cancel":
            return {"id": params["id"], "status": "cancelled"}
        if method == "request.suggest":  # the run page asks what runs next (cloud/choose.py)
            return {"id": params["id"], "point": None, "chosen_by": None, "status": "running"}
        raise AssertionError(f"unexpected core call {method}")


def gaussian(x: list[float], centre: float, height: float, fwhm: float) -> list[float]:
    return [height * math.exp(-4 * math.log(2) * ((v - centre) / fwhm) ** 2) for v in x]


def add_run(
    sessions: sessionmaker[Session],
    owner: str,
    n_experiments: int = 3,
    status: RequestStatus = RequestStatus.RUNNING,
    seq: int | None = None,
    log_key: Path | None = None,
) -> int:
    """A request of ``owner`` with experiments, spectra, fits, features and audit rows."""
    with transaction(sessions) as session:
        user = session.scalars(select(User).where(User.username == owner)).one()
        reaction = cspbbr3_reaction(session)
        last_seq = max([r.seq for r in session.scalars(select(Request))] or [0])
        request = Request(
            seq=seq or last_seq + 1,
            owner_id=user.id,
            reaction_id=reaction.id,
            target={"metric": "cd_first_exciton"},
            budget=10,
            optimizer="snobfit",
            status=status,
            current_step="ABS-CD on SPEC1",
        )
        session.add(request)
        session.flush()
        cipher = LogCipher.from_file(log_key) if log_key else None
        for n in range(1, n_experiments + 1):
            _add_experiment(session, request, n, cipher)
        return request.id


def append_experiment(
    sessions: sessionmaker[Session], request_id: int, number: int, log_key: Path | None = None
) -> None:
    """One more finished experiment, as the worker would store it."""
    with transaction(sessions) as session:
        request = session.get(Request, request_id)
        cipher = LogCipher.from_file(log_key) if log_key else None
        _add_experiment(session, request, number, cipher)


def _add_experiment(session: Session, request: Request, n: int, cipher: LogCipher | None) -> None:
    wl = [400.0 + 2 * i for i in range(101)]
    reward = 0.2 * n
    params = {"T": 100.0 + 10 * n, "C": round(0.3 + 0.1 * n, 2)}
    exp = Experiment(
        request_id=request.id,
        number=n,
        params=params,
        status=ExperimentStatus.DONE,
        reward=reward,
        loss=-reward,
    )
    session.add(exp)
    session.flush()
    absorb = Spectrum(
        experiment_id=exp.id,
        kind="absorbance",
        unit="OD",
        n_points=len(wl),
        wavelength_nm=wl,
        value=gaussian(wl, 450.0, 0.8, 20.0),
    )
    cd = Spectrum(
        experiment_id=exp.id,
        kind="cd",
        unit="mdeg",
        n_points=len(wl),
        wavelength_nm=wl,
        value=gaussian(wl, 455.0, reward, 15.0),
    )
    session.add_all([absorb, cd])
    session.flush()
    session.add(
        PeakFit(
            spectrum_id=cd.id,
            shape="gaussian",
            n_peaks=1,
            peaks=[{"centre_nm": 455.0, "height": reward, "fwhm_nm": 15.0, "area": 1.0}],
            baseline=[0.0],
            r2=0.99,
        )
    )
    session.add(Feature(experiment_id=exp.id, name="cd_at_exciton_mdeg", value=reward, unit="mdeg"))
    if cipher is not None:
        session.add(
            HardwareCommand(
                request_id=request.id,
                experiment_id=exp.id,
                method="heater.set",
                params_enc=cipher.encrypt_json({"setpoint_C": params["T"]}),
                result_enc=cipher.encrypt_json({"temperature_C": params["T"]}),
                duration_ms=12.0,
            )
        )
    if request.best_reward is None or reward > request.best_reward:
        request.best_reward, request.best_params = reward, params
    request.n_done = n

"""RO-Crate export and import (issue 21): a run on the simulated lab exported, read back with
``rocrate``, imported into a fresh database, and used there as the history of a new request;
hostile crates refused with a message that names what is wrong and where."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate
from sqlalchemy import select

from maosic.crate import AUDIT_FILE, EXPERIMENTS_FILE, LAB_FILE, MAX_FILE_BYTES, METADATA
from maosic.crate_service import CrateService
from maosic.db.crypto import LogCipher
from maosic.db.models import Base, Experiment, Request, User
from maosic.db.seed import seed as seed_db
from maosic.db.session import make_engine, session_factory
from maosic.labs import lab_description, register_labs
from maosic.rpc_auth import INSTALLATION, Caller
from maosic.service import CoreService, NotFound, ServiceError
from tests.core.campaign_helpers import config_with, start_sim_daemon, worker


@pytest.fixture
def sim_daemon():
    handle = start_sim_daemon()
    yield handle
    handle.stop()


@pytest.fixture
def fresh_sessions(tmp_path):
    """A second installation's database: schema and demo accounts, no requests."""
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    seed_db(url)
    yield session_factory(engine)
    engine.dispose()


def _caller(sessions, username: str) -> Caller:
    with sessions() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        return Caller(user.id, user.username, False, "password")


def _run_request(sessions, daemon, tmp_path: Path) -> tuple[int, CoreService, LogCipher]:
    """Three experiments of the CsPbBr3 example on the simulated lab, owned by 'owner'."""
    lab_ids = register_labs(sessions, {"sim": daemon.url})
    with sessions() as session:
        session.add(User(username="owner", password_hash="x"))
        session.commit()
    service = CoreService(sessions, lambda url: lab_description(url, {}))
    owner = _caller(sessions, "owner")
    submitted = service.submit(owner, config=config_with(optimizer="random"), budget=3, seed=5)
    assert worker(sessions, daemon, tmp_path, lab_id=lab_ids["sim"]).run_once()
    status = service.status(owner, submitted["id"])
    assert status["status"] == "done" and status["n_done"] == 3, status
    return submitted["id"], service, LogCipher.from_file(tmp_path / "log.key")


def _unzip(reply: dict, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(reply["crate"]))) as archive:
        archive.extractall(folder)
    return folder


def test_export_validates_imports_and_seeds_a_new_request(
    sessions, sim_daemon, tmp_path, fresh_sessions
):
    request_id, service, cipher = _run_request(sessions, sim_daemon, tmp_path)
    crates = CrateService(service, cipher)
    owner = _caller(sessions, "owner")
    reply = crates.export_crate(owner, request_id)
    assert reply["audit_log"] is True
    folder = _unzip(reply, tmp_path / "crate")

    # rocrate reads it back; every data file it lists exists, and the run's parts are there
    crate = ROCrate(folder)
    listed = [e.id for e in crate.data_entities]
    assert listed and all((folder / name).is_file() for name in listed), listed
    for name in ("reaction/config.json", "reaction/program.json", LAB_FILE, EXPERIMENTS_FILE,
                 "request.json", AUDIT_FILE, "spectra/experiment-0001.json"):  # fmt: skip
        assert name in listed, name
    software = crate.get("#maosic")
    assert software.type == "SoftwareApplication" and software["softwareVersion"]
    run = crate.get("#run")
    assert run.type == "CreateAction" and run["instrument"].id == "#maosic"

    experiments = json.loads((folder / EXPERIMENTS_FILE).read_text())
    with sessions() as session:
        stored = list(
            session.scalars(select(Experiment).where(Experiment.request_id == request_id))
        )
    assert [e["number"] for e in experiments] == [e.number for e in stored] == [1, 2, 3]
    assert [e["reward"] for e in experiments] == pytest.approx([e.reward for e in stored])
    assert all(e["chosen_by"] and e["features"] for e in experiments), experiments
    spectra = json.loads((folder / "spectra/experiment-0001.json").read_text())
    assert {s["kind"] for s in spectra} >= {"absorbance", "cd"}
    assert any(s["fits"] for s in spectra)
    lab = json.loads((folder / LAB_FILE).read_text())
    assert lab["answered"] is True and "modules" in lab["description"]
    program = json.loads((folder / "reaction/program.json").read_text())
    assert any(call["method"] == "heater.set" for call in program["plan"]), program["plan"]
    audit = json.loads((folder / AUDIT_FILE).read_text())
    assert audit and all("params" in row and row["method"] for row in audit)
    assert any(row["method"] == "spectrometer.absorbance_cd" or row["method"].startswith(
        "spectrometer.") for row in audit)  # fmt: skip

    # the same request without the log: no file, and the crate says why
    bare = _unzip(crates.export_crate(owner, request_id, audit_log=False), tmp_path / "bare")
    assert not (bare / AUDIT_FILE).exists()
    assert "not included" in json.loads((bare / "request.json").read_text())["audit_log"]

    # another user's request is not theirs to export
    with sessions() as session:
        session.add(User(username="stranger", password_hash="x"))
        session.commit()
    with pytest.raises(NotFound):
        crates.export_crate(_caller(sessions, "stranger"), request_id)

    # import on another installation: a finished request of the importer, same experiments
    other = CrateService(CoreService(fresh_sessions))
    demo = _caller(fresh_sessions, "demo")
    imported = other.import_crate(demo, reply["crate"], name="run.zip")
    assert imported["experiments"] == 3
    with fresh_sessions() as session:
        request = session.get(Request, imported["id"])
        assert request.status.value == "done" and request.owner_id == demo.user_id
        assert "imported from RO-Crate 'run.zip'" in request.stop_reason
        assert f"request {request_id}" in request.stop_reason
        assert [e.reward for e in request.experiments] == pytest.approx([e.reward for e in stored])
        assert all(e.spectra and e.spectra[0].fits for e in request.experiments)
        best = max(e.reward for e in request.experiments)

    # a new request of the same reaction there starts from them: a goal the imported
    # experiments met ends it at once, naming the imported experiment
    register_labs(fresh_sessions, {"sim": sim_daemon.url})
    new_service = CoreService(fresh_sessions)
    target = {"metric": "max_abs_cd_at_exciton", "goal": best - 1e-6}
    new = new_service.submit(demo, config=config_with(optimizer="random"), budget=2,
                             target=target)  # fmt: skip
    with fresh_sessions() as session:
        lab_id = session.get(Request, new["id"]).lab_id
    assert worker(fresh_sessions, sim_daemon, tmp_path / "other", lab_id=lab_id).run_once()
    final = new_service.status(demo, new["id"])
    assert final["status"] == "done" and final["n_done"] == 0, final
    assert f"of request {imported['id']}" in final["stop_reason"], final

    # another user's request is not steered by demo's crate: imported numbers are demo's word
    with fresh_sessions() as session:
        session.add(User(username="colleague", password_hash="x"))
        session.commit()
    colleague = _caller(fresh_sessions, "colleague")
    theirs = new_service.submit(colleague, config=config_with(optimizer="random"), budget=1,
                                target=target)  # fmt: skip
    assert worker(fresh_sessions, sim_daemon, tmp_path / "other", lab_id=lab_id).run_once()
    ran = new_service.status(colleague, theirs["id"])
    assert ran["n_done"] == 1 and "of request" not in (ran["stop_reason"] or ""), ran

    # and without a goal, the optimizer is preloaded with them (its state holds the points)
    more = new_service.submit(demo, config=config_with(optimizer="random"), budget=1)
    assert worker(fresh_sessions, sim_daemon, tmp_path / "other", lab_id=lab_id).run_once()
    with fresh_sessions() as session:
        state = json.dumps(session.get(Request, more["id"]).optimizer_state)
    # the state keeps grid indices and losses: each imported loss is among the told ones
    for e in experiments:
        assert json.dumps(e["loss"]) in state, (e["loss"], state[:400])


# -- hostile crates ------------------------------------------------------------------------------
@pytest.fixture
def exported(sessions, sim_daemon, tmp_path) -> dict[str, bytes]:
    request_id, service, cipher = _run_request(sessions, sim_daemon, tmp_path)
    reply = CrateService(service, cipher).export_crate(_caller(sessions, "owner"), request_id)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(reply["crate"]))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zipped(files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()


def _refusal(fresh_sessions, files: dict[str, bytes]) -> str:
    service = CrateService(CoreService(fresh_sessions))
    with pytest.raises(ServiceError) as refused:
        service.import_crate(_caller(fresh_sessions, "demo"), _zipped(files))
    with fresh_sessions() as session:
        assert session.scalars(select(Request)).first() is None  # nothing half-written
    return str(refused.value)


def test_a_non_finite_reward_is_refused(exported, fresh_sessions):
    text = exported[EXPERIMENTS_FILE].decode()
    rows = json.loads(text)
    rows[1]["reward"] = 1e999  # valid JSON, infinite once read
    bad = json.dumps(rows).replace("Infinity", "1e999")
    message = _refusal(fresh_sessions, {**exported, EXPERIMENTS_FILE: bad.encode()})
    assert "experiments.json[1].reward" in message and "finite" in message, message
    nan = text.replace('"reward": ', '"reward": NaN, "x": ', 1)
    message = _refusal(fresh_sessions, {**exported, EXPERIMENTS_FILE: nan.encode()})
    assert "experiments.json" in message and "NaN" in message, message


def test_an_oversized_file_is_refused(exported, fresh_sessions):
    big = b"[" + b" " * (MAX_FILE_BYTES + 10) + b"]"
    message = _refusal(fresh_sessions, {**exported, EXPERIMENTS_FILE: big})
    assert "experiments.json" in message and "MiB" in message, message


def test_a_path_in_a_name_is_refused(exported, fresh_sessions, tmp_path):
    metadata = json.loads(exported[METADATA])
    root = next(e for e in metadata["@graph"] if e["@id"] == "./")
    root["hasPart"].append({"@id": "../../etc/passwd"})
    message = _refusal(fresh_sessions, {**exported, METADATA: json.dumps(metadata).encode()})
    assert METADATA in message and "../../etc/passwd" in message, message
    # a parameter the configuration does not have, and a wrong type, are named too
    rows = json.loads(exported[EXPERIMENTS_FILE])
    rows[0]["params"]["../x"] = 1.0
    message = _refusal(fresh_sessions, {**exported, EXPERIMENTS_FILE: json.dumps(rows).encode()})
    assert "experiments.json[0].params" in message and "no parameter" in message, message
    rows = json.loads(exported[EXPERIMENTS_FILE])
    rows[2]["number"] = "3"
    message = _refusal(fresh_sessions, {**exported, EXPERIMENTS_FILE: json.dumps(rows).encode()})
    assert "experiments.json[2].number" in message and "whole number" in message, message


def test_not_a_crate_is_refused(fresh_sessions):
    service = CrateService(CoreService(fresh_sessions))
    demo = _caller(fresh_sessions, "demo")
    with pytest.raises(ServiceError, match="not base64"):
        service.import_crate(demo, "%%%")
    with pytest.raises(ServiceError, match="not a zip"):
        service.import_crate(demo, base64.b64encode(b"hello").decode())
    with pytest.raises(ServiceError, match="ro-crate-metadata.json: missing"):
        service.import_crate(demo, _zipped({"x.json": b"{}"}))
    with pytest.raises(ServiceError, match="acts for no account"):
        service.import_crate(INSTALLATION, _zipped({}))

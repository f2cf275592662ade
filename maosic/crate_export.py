"""Export one request as an RO-Crate (docs/ro_crate.md): what reproduces and re-uses the run.

The crate holds the reaction configuration, the compiled program, the lab's description, the
software version, every experiment with its spectra, fits and features, and the decrypted audit
log only when the caller may read it (the caller decides; this module is told).
"""

from __future__ import annotations

import io
import json
import math
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate
from sqlalchemy import select
from sqlalchemy.orm import Session

from maosic.attachments import extension
from maosic.crate import (
    AUDIT_FILE,
    CONFIG_FILE,
    EXPERIMENTS_FILE,
    FORMAT,
    LAB_FILE,
    PROGRAM_FILE,
    REQUEST_FILE,
    software_version,
    spectra_file,
    zip_folder,
)
from maosic.db.crypto import LogCipher, LogKeyError
from maosic.db.models import Attachment, Experiment, HardwareCommand, Request
from maosic.language.compiler import compile_config
from maosic.language.config import load_config
from maosic.language.errors import LanguageError

ATTACHMENTS_FILE = "attachments/attachments.json"
# The lab's system.describe, given its URL; None when it does not answer.
Describe = Callable[[str], dict[str, Any] | None]


@dataclass
class AuditChoice:
    """Whether the crate carries the audit log: ``cipher`` set only for a caller who may read
    it; ``reason`` says why it is left out otherwise (written into the crate)."""

    cipher: LogCipher | None
    reason: str = "the audit log is shown to the request's owner and staff only"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def _finite(value: float | None) -> float | None:
    # JSON has no NaN: a stored NaN (a failed fit) is written as null, not as invalid JSON.
    return float(value) if value is not None and math.isfinite(value) else None


def program_record(config: dict[str, Any]) -> dict[str, Any]:
    """The compiled program and its JSON-RPC plan at the configuration's default point, so a
    reader sees the exact calls without running the compiler of this version."""
    try:
        parsed = load_config(config)
        program = compile_config(parsed)
        point = parsed.defaults()
        return {
            "instructions": program.instructions,
            "init": program.init,
            "variables": sorted(program.variables),
            "modules": sorted(program.modules_used()),
            "point": point,
            "plan": program.plan(point, include_init=True),
        }
    except LanguageError as exc:  # a configuration this version no longer compiles
        return {"error": str(exc)}


def lab_record(request: Request, describe: Describe | None) -> dict[str, Any]:
    """The lab's own description, or a note that it did not answer (the export goes on)."""
    lab = request.lab
    if lab is None:
        return {"answered": False, "lab": None, "reason": "the request was never routed to a lab"}
    described = None
    if describe is not None:
        try:
            described = describe(lab.url)
        except Exception as exc:  # noqa: BLE001 - any failure of the lab is "did not answer"
            return {"answered": False, "lab": lab.name, "reason": f"the lab failed: {exc}"}
    if described is None:
        return {
            "answered": False,
            "lab": lab.name,
            "modules": list(lab.modules or []),
            "reason": "the lab did not answer system.describe when the crate was made",
        }
    return {"answered": True, "lab": lab.name, "description": described}


def experiment_record(experiment: Experiment, numbers: dict[int, int]) -> dict[str, Any]:
    """One experiment; ``numbers`` maps row ids of this request to experiment numbers, so a
    replicate points at the experiment it repeats by number inside the crate."""
    replicate: dict[str, Any] | None = None
    if experiment.replicate_of is not None:
        if experiment.replicate_of in numbers:
            replicate = {"number": numbers[experiment.replicate_of]}
        else:
            replicate = {"experiment_id": experiment.replicate_of, "outside_crate": True}
    return {
        "number": experiment.number,
        "params": experiment.params,
        "status": experiment.status.value,
        "reward": _finite(experiment.reward),
        "reward_uncertainty": _finite(experiment.reward_uncertainty),
        "loss": _finite(experiment.loss),
        "chosen_by": experiment.chosen_by,
        "replicate_of": replicate,
        "batch": experiment.batch,
        "error": experiment.error,
        "failure_kind": experiment.failure_kind,
        "lab_time_s": _finite(experiment.lab_time_s),
        "started_at": _iso(experiment.started_at),
        "finished_at": _iso(experiment.finished_at),
        "features": [
            {"name": f.name, "value": _finite(f.value), "unit": f.unit}
            for f in sorted(experiment.features, key=lambda f: f.name)
        ],
    }


def spectra_record(experiment: Experiment) -> list[dict[str, Any]]:
    return [
        {
            "kind": s.kind,
            "unit": s.unit,
            "saturated": bool(s.saturated),
            "wavelength_nm": s.wavelength_nm,
            "value": s.value,
            "fits": [
                {
                    "shape": f.shape,
                    "n_peaks": f.n_peaks,
                    "peaks": f.peaks,
                    "baseline": f.baseline,
                    "r2": _finite(f.r2),
                    "rmse": _finite(f.rmse),
                    "bic": _finite(f.bic),
                }
                for f in s.fits
            ],
        }
        for s in sorted(experiment.spectra, key=lambda s: s.id)
    ]


def audit_record(session: Session, request_id: int, cipher: LogCipher) -> list[dict[str, Any]]:
    """The hardware commands of the request, decrypted; a row the key cannot open says so."""
    numbers = dict(
        session.execute(
            select(Experiment.id, Experiment.number).where(Experiment.request_id == request_id)
        ).all()
    )
    rows = session.scalars(
        select(HardwareCommand)
        .where(HardwareCommand.request_id == request_id)
        .order_by(HardwareCommand.id)
    )
    out = []
    for row in rows:
        entry: dict[str, Any] = {
            "experiment": numbers.get(row.experiment_id),
            "method": row.method,
            "ok": row.ok,
            "error_code": row.error_code,
            "sent_at": _iso(row.sent_at),
            "duration_ms": _finite(row.duration_ms),
            "actor": row.actor,
        }
        try:
            entry["params"] = cipher.decrypt_json(row.params_enc)
            entry["result"] = (
                cipher.decrypt_json(row.result_enc) if row.result_enc is not None else None
            )
        except LogKeyError:
            entry["params"] = entry["result"] = None
            entry["decrypt_error"] = "cannot decrypt with the configured key"
        out.append(entry)
    return out


def request_record(request: Request, audit_note: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "source": {"installation": platform.node() or "unknown", "request_id": request.id},
        "software_version": software_version(),
        "reaction": request.reaction.name,
        "status": request.status.value,
        "target": request.target,
        "budget": request.budget,
        "optimizer": request.optimizer,
        "seed": request.seed,
        "best_reward": _finite(request.best_reward),
        "best_params": request.best_params,
        "stop_reason": request.stop_reason,
        "failure_reason": request.failure_reason,
        "created_at": _iso(request.created_at),
        "started_at": _iso(request.started_at),
        "finished_at": _iso(request.finished_at),
        "audit_log": audit_note,
    }


def _add_json(crate: ROCrate, name: str, data: Any, title: str, description: str) -> Any:
    text = json.dumps(data, indent=1, allow_nan=False)
    return crate.add_file(
        io.StringIO(text),
        dest_path=name,
        properties={
            "name": title,
            "description": description,
            "encodingFormat": "application/json",
            "contentSize": str(len(text.encode())),
        },
    )


def add_attachments(crate: ROCrate, session: Session, request: Request) -> list[Any]:
    """Offline characterization (maosic/attachments.py): every attachment's value and
    metadata in one JSON file, each file as a data entity named by its row id and the media
    type its bytes showed (the uploader's file name is only a property). None: nothing added."""
    rows = list(
        session.scalars(
            select(Attachment)
            .join(Experiment, Experiment.id == Attachment.experiment_id)
            .where(Experiment.request_id == request.id)
            .order_by(Experiment.number, Attachment.id)
        )
    )
    if not rows:
        return []
    numbers = {e.id: e.number for e in request.experiments}
    records, files = [], []
    for row in rows:
        record: dict[str, Any] = {
            "experiment": numbers.get(row.experiment_id),
            "kind": row.kind,
            "name": row.name,
            "value": _finite(row.value),
            "unit": row.unit,
            "added_at": _iso(row.created_at),
        }
        if row.content is not None:
            path = f"attachments/attachment-{row.id}.{extension(row.media_type)}"
            files.append(
                crate.add_file(
                    io.BytesIO(row.content),
                    dest_path=path,
                    properties={
                        "name": f"{row.name} (experiment {record['experiment']})",
                        "description": f"{row.kind} attached to experiment "
                        f"{record['experiment']}; uploaded as {row.filename or 'a file'}",
                        "encodingFormat": row.media_type,
                        "contentSize": str(row.size_bytes),
                        "sha256": row.sha256,
                    },
                )
            )
            record |= {
                "file": path,
                "filename": row.filename,
                "media_type": row.media_type,
                "size_bytes": row.size_bytes,
                "sha256": row.sha256,
            }
        records.append(record)
    summary = _add_json(
        crate,
        ATTACHMENTS_FILE,
        records,
        "offline characterization",
        "Values (e.g. absolute PLQY, %) and files (TEM, XRD) measured ex situ, per experiment.",
    )
    return [summary, *files]


def write_crate(
    session: Session,
    request: Request,
    folder: Path,
    describe: Describe | None,
    audit: AuditChoice,
) -> Path:
    """Write the request's crate into ``folder`` (created; must be empty or absent)."""
    numbers = {e.id: e.number for e in request.experiments}
    crate = ROCrate()
    crate.name = f"MAOSIC request {request.id}: {request.reaction.name}"
    crate.description = (
        "A closed-loop synthesis campaign of the MAOSIC self-driving lab: reaction "
        "configuration, compiled program, lab description, software version, and every "
        "experiment with its spectra, peak fits and features."
    )
    crate.root_dataset["identifier"] = f"maosic-request-{request.id}"
    crate.root_dataset["conformsTo"] = {"@id": "https://w3id.org/ro/crate/1.1"}
    crate.root_dataset["additionalType"] = FORMAT
    software = crate.add(
        ContextEntity(
            crate,
            "#maosic",
            properties={
                "@type": "SoftwareApplication",
                "name": "MAOSIC",
                "softwareVersion": software_version(),
            },
        )
    )
    config = _add_json(
        crate,
        CONFIG_FILE,
        request.reaction.config,
        "reaction configuration",
        "The reaction configuration (paper Fig. S10 schema) the request ran.",
    )
    program = _add_json(
        crate,
        PROGRAM_FILE,
        program_record(request.reaction.config),
        "compiled program",
        "Instruction codes and the JSON-RPC plan at the configuration's default point.",
    )
    lab = _add_json(
        crate,
        LAB_FILE,
        lab_record(request, describe),
        "lab description",
        "The hardware daemon's system.describe answer, or why it is missing.",
    )
    include = audit.cipher is not None
    note = "included" if include else f"not included: {audit.reason}"
    summary = _add_json(
        crate,
        REQUEST_FILE,
        request_record(request, note),
        "request",
        "Target, budget, optimizer, seed, status and where the crate came from.",
    )
    experiments = _add_json(
        crate,
        EXPERIMENTS_FILE,
        [experiment_record(e, numbers) for e in request.experiments],
        "experiments",
        "Every experiment: parameters, status, reward, loss, who chose it, features.",
    )
    results = [summary, experiments]
    for e in request.experiments:
        if e.spectra:
            results.append(
                _add_json(
                    crate,
                    spectra_file(e.number),
                    spectra_record(e),
                    f"spectra of experiment {e.number}",
                    "Measured spectra (nm, unit per spectrum) with their peak fits.",
                )
            )
    results += add_attachments(crate, session, request)
    if include:
        assert audit.cipher is not None
        results.append(
            _add_json(
                crate,
                AUDIT_FILE,
                audit_record(session, request.id, audit.cipher),
                "hardware audit log",
                "Every JSON-RPC call the core sent to the lab for this request, decrypted.",
            )
        )
    # The run itself as a provenance action: the software, fed the configuration on the lab,
    # gave these results (the RO-Crate "process run crate" shape).
    crate.add(
        ContextEntity(
            crate,
            "#run",
            properties={
                "@type": "CreateAction",
                "name": f"request {request.id}",
                "instrument": {"@id": software.id},
                "object": [{"@id": config.id}, {"@id": program.id}, {"@id": lab.id}],
                "result": [{"@id": r.id} for r in results],
                **({"endTime": _iso(request.finished_at)} if request.finished_at else {}),
            },
        )
    )
    crate.write(folder)
    return folder


def crate_zip(
    session: Session, request: Request, describe: Describe | None, audit: AuditChoice
) -> bytes:
    """The request's crate as zip bytes (a download, or base64 over JSON-RPC)."""
    with tempfile.TemporaryDirectory(prefix="maosic-crate-") as tmp:
        folder = write_crate(session, request, Path(tmp) / "crate", describe, audit)
        return zip_folder(folder)

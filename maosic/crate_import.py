"""Import a request's RO-Crate (see :mod:`maosic.crate_export`) as a finished request.

Everything in a crate is hostile: sizes are checked before reading, every number must be
finite, every string has a length, and the files read are the fixed names of
:mod:`maosic.crate` only (a name in the crate's metadata is compared with them, never opened).
The imported request is done, owned by the importer, and of the same reaction (same
configuration digest) as any new request of that configuration, so the campaign preloads its
experiments as history.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from maosic import plans
from maosic.analysis.errors import SpectrumError
from maosic.analysis.reward import check_target
from maosic.crate import (
    ATTACHMENT_NAME,
    CONFIG_FILE,
    EXPERIMENTS_FILE,
    FIXED_FILES,
    FORMAT,
    IMPORTED_PREFIX,
    MAX_FILE_BYTES,
    MAX_MEMBERS,
    MAX_TOTAL_BYTES,
    MAX_ZIP_BYTES,
    METADATA,
    REQUEST_FILE,
    SPECTRA_NAME,
    CrateError,
    spectra_file,
)
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Feature,
    PeakFit,
    Request,
    RequestStatus,
    Spectrum,
    User,
    utcnow,
)
from maosic.db.repository import get_or_create_reaction
from maosic.language.config import load_config
from maosic.language.errors import LanguageError
from maosic.optimize.registry import OPTIMIZERS
from maosic.queue import next_seq

MAX_EXPERIMENTS = 10_000
MAX_SPECTRA = 16  # per experiment: absorbance, CD, PL and a few repeats
MAX_POINTS = 100_000  # per spectrum
MAX_FITS = 16
MAX_JSON_DEPTH = 8
MAX_TEXT = 10_000
MAX_SEED = 2**31 - 1


# -- reading the container ------------------------------------------------------------------
class CrateSource:
    """The crate's files by their fixed names, from a zip (bytes) or a folder."""

    def __init__(self, zip_bytes: bytes | None = None, folder: Path | None = None):
        self._zip: zipfile.ZipFile | None = None
        self._folder = folder
        if zip_bytes is not None:
            self._zip = _open_zip(zip_bytes)

    def read(self, name: str, required: bool = True) -> Any:
        """The JSON in file ``name`` (one of the layout's names, built by this module)."""
        data = self._bytes(name)
        if data is None:
            if required:
                raise CrateError(name, "missing from the crate")
            return None
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
        except UnicodeDecodeError:
            raise CrateError(name, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise CrateError(name, f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:  # NaN/Infinity, or nesting past the stack
            raise CrateError(name, f"not plain JSON: {exc}") from None

    def raw(self, name: str) -> bytes | None:
        """File ``name``'s bytes (size-checked), or None when the crate has no such file."""
        return self._bytes(name)

    def _bytes(self, name: str) -> bytes | None:
        if self._zip is not None:
            try:
                info = self._zip.getinfo(name)
            except KeyError:
                return None
            if info.file_size > MAX_FILE_BYTES:
                raise CrateError(name, _too_big(info.file_size))
            with self._zip.open(info) as handle:
                data = handle.read(MAX_FILE_BYTES + 1)  # the header's size may lie
            if len(data) > MAX_FILE_BYTES:
                raise CrateError(name, _too_big(len(data)))
            return data
        assert self._folder is not None
        path = self._folder.joinpath(*name.split("/"))
        # A link (the file or a folder on the way) could lead out of the crate: refused.
        if path.exists() and not path.resolve().is_relative_to(self._folder.resolve()):
            raise CrateError(name, "leads outside the crate folder (a symbolic link)")
        if path.is_symlink():
            raise CrateError(name, "is a symbolic link; a crate holds plain files")
        if not path.is_file():
            return None
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CrateError(name, _too_big(size))
        return path.read_bytes()


def _too_big(size: int) -> str:
    return f"{size} bytes, more than the {MAX_FILE_BYTES // (1024 * 1024)} MiB a crate file may be"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _open_zip(data: bytes) -> zipfile.ZipFile:
    if len(data) > MAX_ZIP_BYTES:
        raise CrateError("crate", f"the zip is larger than {MAX_ZIP_BYTES // 2**20} MiB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CrateError("crate", f"not a zip file: {exc}") from None
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CrateError("crate", f"{len(infos)} files, more than {MAX_MEMBERS}")
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES:
        raise CrateError("crate", f"unzips to {total} bytes, more than {MAX_TOTAL_BYTES}")
    return archive


def source_of(path: Path) -> CrateSource:
    """A crate the user named on their own machine: a folder, or a zip file."""
    if path.is_dir():
        return CrateSource(folder=path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CrateError(str(path), f"cannot read it: {exc.strerror}") from None
    if size > MAX_ZIP_BYTES:
        raise CrateError(str(path), f"larger than {MAX_ZIP_BYTES // 2**20} MiB")
    return CrateSource(zip_bytes=path.read_bytes())


# -- checking values -------------------------------------------------------------------------
def _number(value: Any, where: str, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CrateError(where, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise CrateError(where, f"must be a finite number, got {value}")
    return float(value)


def _integer(value: Any, where: str, low: int, high: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CrateError(where, f"must be a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        raise CrateError(where, f"must be between {low} and {high}")
    return value


def _text(value: Any, where: str, limit: int, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise CrateError(where, f"must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise CrateError(where, f"at most {limit} characters, got {len(value)}")
    if "\x00" in value:
        raise CrateError(where, "contains a NUL character")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CrateError(where, f"must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise CrateError(where, f"must be a list, got {type(value).__name__}")
    if len(value) > limit:
        raise CrateError(where, f"at most {limit} entries, got {len(value)}")
    return value


def _json_value(value: Any, where: str, depth: int = 0) -> Any:
    """Free-form JSON (peaks, baselines, targets): bounded depth, finite numbers, short text."""
    if depth > MAX_JSON_DEPTH:
        raise CrateError(where, f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _text(key, f"{where} key", 64, optional=False)
            _json_value(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(_list(value, where, MAX_POINTS)):
            _json_value(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, float):
        _number(value, where)
    elif isinstance(value, str):
        _text(value, where, MAX_TEXT)
    return value


def _time(value: Any, where: str) -> datetime | None:
    text = _text(value, where, 40)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        raise CrateError(where, f"not an ISO 8601 time: {text!r}") from None
    return parsed.replace(tzinfo=None)


def _printable(text: str, limit: int) -> str:
    """A crate's string shown inside our own messages: printable, short."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


# -- the crate's parts -----------------------------------------------------------------------
def check_metadata(source: CrateSource) -> None:
    """ro-crate-metadata.json must list only files of this layout: a name with a path in it
    (``../x``, ``/etc/passwd``) is refused, not resolved."""
    graph = _list(_object(source.read(METADATA), METADATA).get("@graph"), f"{METADATA} @graph",
                  MAX_MEMBERS)  # fmt: skip
    root = None
    for index, entity in enumerate(graph):
        entity = _object(entity, f"{METADATA} @graph[{index}]")
        if entity.get("@id") == "./":
            root = entity
    if root is None:
        raise CrateError(METADATA, "no root data entity './'")
    if root.get("additionalType") != FORMAT:
        raise CrateError(METADATA, f"not a MAOSIC request crate (additionalType {FORMAT!r})")
    parts = root.get("hasPart", [])
    for index, part in enumerate(_list(parts if isinstance(parts, list) else [parts],
                                       f"{METADATA} hasPart", MAX_MEMBERS)):  # fmt: skip
        ident = _object(part, f"{METADATA} hasPart[{index}]").get("@id")
        _text(ident, f"{METADATA} hasPart[{index}] @id", 200, optional=False)
        known = SPECTRA_NAME.fullmatch(ident) or ATTACHMENT_NAME.fullmatch(ident)
        if ident not in FIXED_FILES and not known:
            raise CrateError(
                f"{METADATA} hasPart[{index}]",
                f"lists {_printable(ident, 80)!r}, not a file of a MAOSIC crate "
                "(names are never used as paths)",
            )


@dataclass
class _Point:
    """One experiment, checked, ready to store."""

    record: dict[str, Any]
    status: ExperimentStatus
    spectra: list[dict[str, Any]]


def check_experiment(raw: Any, where: str, names: set[str]) -> dict[str, Any]:
    item = _object(raw, where)
    params = _object(item.get("params"), f"{where}.params")
    for key, value in params.items():
        if key not in names:
            raise CrateError(f"{where}.params", f"{_printable(str(key), 40)!r} is no parameter "
                             "of the reaction configuration")  # fmt: skip
        _number(value, f"{where}.params.{key}", optional=False)
    features = []
    for index, f in enumerate(_list(item.get("features", []), f"{where}.features", 256)):
        f = _object(f, f"{where}.features[{index}]")
        features.append(
            {
                "name": _text(f.get("name"), f"{where}.features[{index}].name", 64, False),
                "value": _number(f.get("value"), f"{where}.features[{index}].value"),
                "unit": _text(f.get("unit"), f"{where}.features[{index}].unit", 16),
            }
        )
    status = _text(item.get("status"), f"{where}.status", 16, optional=False)
    if status not in {s.value for s in ExperimentStatus}:
        raise CrateError(f"{where}.status", f"unknown status {_printable(str(status), 20)!r}")
    replicate = item.get("replicate_of")
    if replicate is not None:
        replicate = _object(replicate, f"{where}.replicate_of").get("number")
        replicate = _integer(replicate, f"{where}.replicate_of.number", 1, MAX_EXPERIMENTS, True)
    return {
        "number": _integer(item.get("number"), f"{where}.number", 1, MAX_EXPERIMENTS),
        "params": {k: float(v) for k, v in params.items()},
        "status": status,
        "reward": _number(item.get("reward"), f"{where}.reward"),
        "reward_uncertainty": _number(item.get("reward_uncertainty"), f"{where}.reward_unc"),
        "loss": _number(item.get("loss"), f"{where}.loss"),
        "chosen_by": _text(item.get("chosen_by"), f"{where}.chosen_by", 80),
        "replicate_of": replicate,
        "batch": _integer(item.get("batch"), f"{where}.batch", 0, MAX_EXPERIMENTS, True),
        "error": _text(item.get("error"), f"{where}.error", MAX_TEXT),
        "failure_kind": _text(item.get("failure_kind"), f"{where}.failure_kind", 16),
        "lab_time_s": _number(item.get("lab_time_s"), f"{where}.lab_time_s"),
        "started_at": _time(item.get("started_at"), f"{where}.started_at"),
        "finished_at": _time(item.get("finished_at"), f"{where}.finished_at"),
        "features": features,
    }


def check_spectra(raw: Any, where: str) -> list[dict[str, Any]]:
    out = []
    for index, s in enumerate(_list(raw, where, MAX_SPECTRA)):
        at = f"{where}[{index}]"
        s = _object(s, at)
        x = _list(s.get("wavelength_nm"), f"{at}.wavelength_nm", MAX_POINTS)
        y = _list(s.get("value"), f"{at}.value", MAX_POINTS)
        if len(x) != len(y):
            raise CrateError(at, f"{len(x)} wavelengths but {len(y)} values")
        for name, values in (("wavelength_nm", x), ("value", y)):
            for i, v in enumerate(values):
                _number(v, f"{at}.{name}[{i}]", optional=False)
        fits = []
        for i, f in enumerate(_list(s.get("fits", []), f"{at}.fits", MAX_FITS)):
            fat = f"{at}.fits[{i}]"
            f = _object(f, fat)
            fits.append(
                {
                    "shape": _text(f.get("shape"), f"{fat}.shape", 16, optional=False),
                    "n_peaks": _integer(f.get("n_peaks"), f"{fat}.n_peaks", 0, 64),
                    "peaks": _json_value(_list(f.get("peaks"), f"{fat}.peaks", 64), fat),
                    "baseline": _json_value(f.get("baseline") or {}, f"{fat}.baseline"),
                    "r2": _number(f.get("r2"), f"{fat}.r2"),
                    "rmse": _number(f.get("rmse"), f"{fat}.rmse"),
                    "bic": _number(f.get("bic"), f"{fat}.bic"),
                }
            )
        out.append(
            {
                "kind": _text(s.get("kind"), f"{at}.kind", 16, optional=False),
                "unit": _text(s.get("unit"), f"{at}.unit", 16, optional=False),
                "saturated": bool(s.get("saturated") is True),
                "wavelength_nm": [float(v) for v in x],
                "value": [float(v) for v in y],
                "fits": fits,
            }
        )
    return out


@dataclass
class CheckedCrate:
    config: dict[str, Any]
    summary: dict[str, Any]
    experiments: list[dict[str, Any]]
    spectra: dict[int, list[dict[str, Any]]]


def check_crate(source: CrateSource) -> CheckedCrate:
    """Read and check every part; CrateError names the first problem and where it is."""
    check_metadata(source)
    summary = _object(source.read(REQUEST_FILE), REQUEST_FILE)
    if summary.get("format") != FORMAT:
        raise CrateError(f"{REQUEST_FILE} format", f"must be {FORMAT!r}")
    config = _object(source.read(CONFIG_FILE), CONFIG_FILE)
    try:
        parsed = load_config(config, where=CONFIG_FILE)
        parsed.program()  # a configuration this version cannot compile is no reaction here
    except LanguageError as exc:
        raise CrateError(CONFIG_FILE, str(exc)) from None
    names = set(parsed.params)
    experiments = []
    seen: set[int] = set()
    raw = _list(source.read(EXPERIMENTS_FILE), EXPERIMENTS_FILE, MAX_EXPERIMENTS)
    for index, item in enumerate(raw):
        checked = check_experiment(item, f"{EXPERIMENTS_FILE}[{index}]", names)
        if checked["number"] in seen:
            raise CrateError(f"{EXPERIMENTS_FILE}[{index}].number", "repeats another's number")
        seen.add(checked["number"])
        experiments.append(checked)
    spectra = {}
    for e in experiments:
        name = spectra_file(e["number"])
        found = source.read(name, required=False)
        if found is not None:
            spectra[e["number"]] = check_spectra(found, name)
    # Stored as a new submission of the same configuration would be: same digest, same reaction.
    return CheckedCrate(parsed.to_dict(), summary, experiments, spectra)


# -- writing it --------------------------------------------------------------------------------
def _request_fields(summary: dict[str, Any], n_experiments: int) -> dict[str, Any]:
    try:
        target = check_target(summary.get("target"))
    except SpectrumError as exc:
        raise CrateError(f"{REQUEST_FILE} target", str(exc)) from None
    optimizer = _text(summary.get("optimizer"), f"{REQUEST_FILE} optimizer", 32, False)
    if optimizer not in OPTIMIZERS and optimizer != plans.POINTS:
        raise CrateError(f"{REQUEST_FILE} optimizer", f"unknown optimizer {optimizer!r}")
    return {
        "target": target,
        "optimizer": optimizer,
        "seed": _integer(summary.get("seed", 0), f"{REQUEST_FILE} seed", 0, MAX_SEED),
        "budget": max(1, n_experiments),
    }


def _stop_reason(summary: dict[str, Any], crate_name: str) -> str:
    source = summary.get("source") if isinstance(summary.get("source"), dict) else {}
    installation = source.get("installation")
    installation = _printable(installation, 60) if isinstance(installation, str) else "unknown"
    origin = source.get("request_id")
    origin = f"request {origin}" if isinstance(origin, int) and origin > 0 else "a request"
    reason = f"{IMPORTED_PREFIX} {_printable(crate_name, 80)!r}: {origin} on {installation}"
    return reason[:255]


def store(session: Session, crate: CheckedCrate, importer: User | None, crate_name: str) -> int:
    """Write the checked crate as a finished request of ``importer``; returns its id."""
    fields = _request_fields(crate.summary, len(crate.experiments))
    reaction, _ = get_or_create_reaction(
        session, crate.config, owner_id=importer.id if importer else None
    )
    now = utcnow()
    counted = [e for e in crate.experiments if e["status"] in ("done", "failed")]
    scored = [e for e in crate.experiments if e["status"] == "done" and e["reward"] is not None]
    best = max(scored, key=lambda e: e["reward"]) if scored else None
    request = Request(
        seq=next_seq(session),
        owner_id=importer.id if importer else None,
        reaction_id=reaction.id,
        status=RequestStatus.DONE,
        stop_reason=_stop_reason(crate.summary, crate_name),
        n_done=len(counted),
        best_reward=best["reward"] if best else None,
        best_params=best["params"] if best else None,
        created_at=now,
        started_at=now,
        finished_at=now,
        **fields,
    )
    session.add(request)
    session.flush()
    rows: dict[int, Experiment] = {}
    for e in sorted(crate.experiments, key=lambda e: e["number"]):
        # A crate made while the request ran holds a running experiment: it never finished.
        status = ExperimentStatus(e["status"])
        if status == ExperimentStatus.RUNNING:
            status = ExperimentStatus.ABORTED
        row = Experiment(
            request_id=request.id,
            number=e["number"],
            params=e["params"],
            status=status,
            reward=e["reward"],
            reward_uncertainty=e["reward_uncertainty"],
            loss=e["loss"],
            chosen_by=e["chosen_by"],
            batch=e["batch"],
            error=e["error"],
            failure_kind=e["failure_kind"],
            lab_time_s=e["lab_time_s"],
            started_at=e["started_at"] or now,
            finished_at=e["finished_at"] or now,
        )
        row.features = [Feature(**f) for f in e["features"]]
        row.spectra = [_spectrum(s) for s in crate.spectra.get(e["number"], [])]
        session.add(row)
        rows[e["number"]] = row
    session.flush()
    for e in crate.experiments:  # replicates point at rows that now have ids
        target = rows.get(e["replicate_of"]) if e["replicate_of"] is not None else None
        if target is not None:
            rows[e["number"]].replicate_of = target.id
    session.flush()
    return request.id


def _spectrum(s: dict[str, Any]) -> Spectrum:
    spectrum = Spectrum(
        kind=s["kind"],
        unit=s["unit"],
        n_points=len(s["value"]),
        wavelength_nm=s["wavelength_nm"],
        value=s["value"],
        saturated=s["saturated"],
    )
    spectrum.fits = [PeakFit(**f) for f in s["fits"]]
    return spectrum


def repack(path: Path) -> tuple[bytes, CheckedCrate]:
    """A crate on this machine checked, then zipped from the layout's files only: what a
    folder holds besides them (or links out of it) never leaves the machine."""
    source = source_of(path)
    checked = check_crate(source)
    names = [METADATA, *FIXED_FILES, *(spectra_file(n) for n in sorted(checked.spectra))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            data = source.raw(name)
            if data is not None:
                archive.writestr(name, data)
    return buffer.getvalue(), checked

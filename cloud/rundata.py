"""Read a run's state, experiments, spectra and fits from the database as JSON-able dicts.

The run page, the experiment page and the downloads share these, so what a person sees and
what they download are the same numbers.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from datetime import datetime
from typing import Any

import numpy as np
from flask import abort, current_app
from flask_login import current_user
from jinja2.utils import htmlsafe_json_dumps
from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import defer, joinedload, selectinload

from cloud.context import db, payload_cache
from maosic.analysis.model import baseline_basis, edge_columns
from maosic.analysis.reward import reward_unit
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Feature,
    Request,
    RequestShare,
    RequestStatus,
    Spectrum,
)
from maosic.queue import NO_ESTIMATE, Estimate, position
from maosic.queue import estimates as queue_estimates

MAX_PLOT_POINTS = 400  # spectra are thinned for the live plots; downloads keep every point
FINISHED = (ExperimentStatus.DONE, ExperimentStatus.FAILED)
ACTIVE = (RequestStatus.QUEUED, RequestStatus.RUNNING, RequestStatus.PAUSED)


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def load_request(request_id: int) -> Request:
    """The request if the current account may see it; 404 otherwise (never 403: a user must not
    learn that someone else's id exists)."""
    # Every page of a run shows its reaction and owner: one joined query instead of three.
    request = db().get(
        Request, request_id, options=[joinedload(Request.reaction), joinedload(Request.owner)]
    )
    if request is None:
        abort(404)
    if not current_user.is_staff and request.owner_id != current_user.id:
        if not is_shared_with(request.id, current_user.id):
            abort(404)
    return request


def visible() -> ColumnElement[bool]:
    """The requests the current account may see, as a WHERE clause: its own and those shared
    with it; every request for staff. The one rule the list, compare, calibration and replicate
    views all apply."""
    if current_user.is_staff:
        return true()
    shared = select(RequestShare.request_id).where(RequestShare.user_id == current_user.id)
    return or_(Request.owner_id == current_user.id, Request.id.in_(shared))


def is_shared_with(request_id: int, user_id: int) -> bool:
    """Whether the owner shared the request read-only with this account (cloud/sharing.py)."""
    found = db().scalar(
        select(RequestShare.id).where(
            RequestShare.request_id == request_id, RequestShare.user_id == user_id
        )
    )
    return found is not None


def may_manage(request: Request) -> bool:
    """Cancel and share: the owner and staff; a colleague it is shared with only looks."""
    return bool(current_user.is_staff or request.owner_id == current_user.id)


def load_experiment(request: Request, number: int) -> Experiment:
    """Experiment ``number`` of the request (the row only; see :func:`experiment_view`)."""
    found = (
        db()
        .scalars(
            select(Experiment).where(
                Experiment.request_id == request.id, Experiment.number == number
            )
        )
        .first()
    )
    if found is None:
        abort(404)
    return found


def experiment_view(experiment: Experiment) -> dict[str, Any]:
    """Spectra (plot payloads, also as page-safe JSON) and features of one experiment.

    The campaign writes an experiment's status, spectra, fits and features in one transaction
    when it finishes, and never touches them again, so a finished experiment's view is cached
    keyed on its id and finish time: a run page polled by many people, or an experiment page
    opened again and again, then costs no spectrum, fit or feature query.
    """
    final = experiment.status in FINISHED and experiment.finished_at is not None
    key = ("experiment", experiment.id, experiment.finished_at)
    if final:
        cached = payload_cache().get(key)
        if cached is not None:
            return cached
    session = db()
    spectra = session.scalars(
        select(Spectrum)
        .where(Spectrum.experiment_id == experiment.id)
        .order_by(Spectrum.id)
        # The point arrays load only if spectrum_payload has not cached them yet.
        .options(defer(Spectrum.wavelength_nm), defer(Spectrum.value))
        .options(selectinload(Spectrum.fits))
    )
    payloads = [spectrum_payload(s) for s in spectra]
    features = session.scalars(
        select(Feature).where(Feature.experiment_id == experiment.id).order_by(Feature.id)
    )
    view = {
        "spectra": payloads,
        "spectra_json": htmlsafe_json_dumps(payloads, dumps=current_app.json.dumps),
        "features": [{"name": f.name, "value": f.value, "unit": f.unit} for f in features],
    }
    if final:
        payload_cache().put(key, view)
    return view


def space_of(request: Request) -> dict[str, dict[str, Any]]:
    """The optimised variables of the request's reaction: {name: {bound, dx}} (config units)."""
    params = (request.reaction.config or {}).get("param") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, spec in params.items():
        if isinstance(spec, dict) and spec.get("var", 1) and "bound" in spec:
            out[name] = {"bound": list(spec["bound"]), "dx": spec.get("dx")}
    return out


def summary(request: Request) -> dict[str, Any]:
    """Progress of one request (the fields of the core's request.status)."""
    return summaries([request])[0]


def summaries(requests: list[Request]) -> list[dict[str, Any]]:
    """Progress of many requests in a fixed number of queries (lists show hundreds)."""
    session = db()
    ids = [r.id for r in requests]
    counts: dict[int, int] = {}  # finished experiments (done or failed): the budget they use
    failed: dict[int, int] = {}  # of which failed: chemistry failures, told to the optimizer
    if ids:
        for request_id, status, n in session.execute(
            select(Experiment.request_id, Experiment.status, func.count())
            .where(Experiment.request_id.in_(ids), Experiment.status.in_(FINISHED))
            .group_by(Experiment.request_id, Experiment.status)
        ):
            counts[request_id] = counts.get(request_id, 0) + int(n)
            if status == ExperimentStatus.FAILED:
                failed[request_id] = int(n)
    queued_seqs: list[int] = []
    if any(r.status == RequestStatus.QUEUED for r in requests):
        queued_seqs = list(
            session.scalars(
                select(Request.seq)
                .where(Request.status == RequestStatus.QUEUED)
                .order_by(Request.seq)
            )
        )
    # Estimates only for active requests, all at once: each waits for those ahead of it.
    active = any(r.status in ACTIVE for r in requests)
    times = queue_estimates(session) if active else {}
    units = {id(r): reward_unit(r.target) for r in requests}
    return [
        _summary(
            r,
            int(counts.get(r.id, 0)),
            queued_seqs,
            times,
            failed.get(r.id, 0),
            units[id(r)],
        )
        for r in requests
    ]


def _position(request: Request, queued_seqs: list[int]) -> int | None:
    """1 = next to run, 0 = running or paused, None = finished (as maosic.queue.position)."""
    if request.status in (RequestStatus.RUNNING, RequestStatus.PAUSED):
        return 0
    if request.status != RequestStatus.QUEUED:
        return None
    return bisect.bisect_left(queued_seqs, request.seq) + 1


def _summary(
    request: Request,
    n_done: int,
    queued_seqs: list[int],
    times: dict[int, Estimate],
    n_chemistry_failures: int = 0,
    unit: str | None = None,
) -> dict[str, Any]:
    # As the core's request.status: wall-clock time left (the wait ahead included), with
    # which clock it is on and, for a simulated lab, the same on the lab's own clock.
    timing = times[request.id].fields() if request.id in times else dict(NO_ESTIMATE)
    return {
        "id": request.id,
        "seq": request.seq,
        "status": request.status.value,
        "position": _position(request, queued_seqs),
        "owner": request.owner.username if request.owner else None,
        "reaction": request.reaction.name,
        "target": request.target,
        "optimizer": request.optimizer,
        "budget": request.budget,
        "n_done": n_done,
        # As the core's request.status: failures that count against the budget (the chemistry
        # gave no usable result) and experiments the lab lost (a refused command, a lost lease),
        # redone without counting.
        "n_chemistry_failures": n_chemistry_failures,
        "n_lab_failures": int(request.n_lab_failures or 0),
        "best_reward": _finite(request.best_reward),
        "best_params": request.best_params,
        "current_step": request.current_step,
        **timing,
        "reward_unit": unit,  # of best_reward and every experiment's reward
        "cancel_requested": bool(request.cancel_requested),
        "failure_reason": request.failure_reason,
        "stop_reason": request.stop_reason,
        "created_at": iso(request.created_at),
        "started_at": iso(request.started_at),
        "finished_at": iso(request.finished_at),
    }


def fingerprint(request: Request) -> str:
    """Changes whenever anything the run page shows changes (status, step, experiments)."""
    count, last_id, last_finished = (
        db()
        .execute(
            select(func.count(), func.max(Experiment.id), func.max(Experiment.finished_at)).where(
                Experiment.request_id == request.id
            )
        )
        .one()
    )
    ahead = position(db(), request) if request.status == RequestStatus.QUEUED else None
    if ahead is not None:
        # A queued request's estimates move with the progress of the requests ahead of it.
        estimate = queue_estimates(db()).get(request.id)
        ahead = (ahead, round(estimate.start_s) if estimate else None)
    parts = (
        request.status.value,
        request.current_step,
        request.cancel_requested,
        request.best_reward,
        request.n_lab_failures,
        request.heartbeat_at if request.status == RequestStatus.PAUSED else None,
        count,
        last_id,
        last_finished,
        ahead,
        request.finished_at,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def experiment_rows(request: Request) -> list[dict[str, Any]]:
    experiments = db().scalars(
        select(Experiment).where(Experiment.request_id == request.id).order_by(Experiment.number)
    )
    return [
        {
            "number": e.number,
            "params": e.params,
            "status": e.status.value,
            "reward": _finite(e.reward),
            "loss": _finite(e.loss),
            "error": e.error,
            "failure_kind": e.failure_kind,
            "batch": e.batch,  # which optimizer call (of nreq points) proposed it
            "chosen_by": e.chosen_by,  # optimizer:NAME, user:NAME, design:KIND, confirm
            "replicate_of": e.replicate_of,  # the experiment (row id) it repeats
            "lab_time_s": e.lab_time_s,
            "started_at": iso(e.started_at),
            "finished_at": iso(e.finished_at),
        }
        for e in experiments
    ]


def best_so_far(rows: list[dict[str, Any]]) -> list[list[float]]:
    """[[experiment number, best reward up to it], ...] over experiments with a reward."""
    out, best = [], -math.inf
    for row in rows:
        if row["reward"] is None:
            continue
        best = max(best, row["reward"])
        out.append([row["number"], best])
    return out


def _thin(x: list[float], y: list[float]) -> tuple[list[float], list[float]]:
    step = max(1, math.ceil(len(x) / MAX_PLOT_POINTS))
    return x[::step], y[::step]


def _peak_values(shape: str, peak: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """One fitted peak at wavelengths ``x`` (nm); keys as the analyzer stores them."""
    centre = float(peak.get("centre_nm", peak.get("centre", 0.0)))
    height = float(peak.get("height", 0.0))
    fwhm = float(peak.get("fwhm_nm", peak.get("fwhm", 1.0))) or 1.0
    z2 = ((x - centre) / fwhm) ** 2
    gauss = np.exp(-4.0 * math.log(2.0) * z2)
    lorentz = 1.0 / (1.0 + 4.0 * z2)
    if shape == "lorentzian":
        return height * lorentz
    if shape == "pseudo_voigt":
        eta = float(peak.get("eta", 0.5) or 0.0)
        return height * ((1.0 - eta) * gauss + eta * lorentz)
    return height * gauss


def fit_curve(fit: Any, wavelengths: list[float]) -> list[float]:
    """The fitted model (peaks, absorption edges + the analyzer's baseline) at ``wavelengths``.

    A stored baseline is a dict with the analyzer's coefficients, polynomial order, scattering
    term and the fitted span; it is evaluated with the analyzer's own basis. A bare list (older
    rows) is taken as polynomial coefficients in the reduced wavelength over ``wavelengths``.
    """
    if not wavelengths:
        return []
    x = np.asarray(wavelengths, dtype=float)
    base = fit.baseline or []
    if isinstance(base, dict) and base.get("coefficients"):
        coefs = np.asarray(base["coefficients"], dtype=float)
        span = tuple(base["span_nm"]) if base.get("span_nm") else None
        order = int(base["order"]) if base.get("order") is not None else coefs.size - 1
        basis = baseline_basis(x, order, bool(base.get("scattering")), span)
        curve = basis[:, : coefs.size] @ coefs[: basis.shape[1]]
    else:
        coefs = base if isinstance(base, list) else []
        lo, hi = float(x.min()), float(x.max())
        u = (x - 0.5 * (lo + hi)) / (0.5 * (hi - lo) or 1.0)
        curve = np.zeros_like(x)
        for k, c in enumerate(coefs):
            curve += float(c) * u**k
    for peak in fit.peaks or []:
        curve += _peak_values(fit.shape, peak, x)
    edges = (base.get("edges") or []) if isinstance(base, dict) else []
    for edge in edges:
        curve += _edge_values(edge, x)
    return [round(v, 6) for v in curve.tolist()]


def _edge_values(edge: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """One absorption edge of the analyzer's model: height / (1 + exp((x - centre) / width))."""
    width = float(edge.get("width_nm") or 0.0)
    if width <= 0:
        return np.zeros_like(x)
    unit = edge_columns(x, [float(edge.get("centre_nm", 0.0))], [width])[:, 0]
    return float(edge.get("height", 0.0)) * unit


def fit_span(fit: Any) -> tuple[float, float] | None:
    """The wavelength range (nm) the analyzer fitted, if the stored baseline records it."""
    base = fit.baseline
    if isinstance(base, dict) and base.get("span_nm"):
        lo, hi = (float(v) for v in base["span_nm"])
        return (lo, hi) if lo <= hi else (hi, lo)
    return None


def _fit_payload(fit: Any, x: list[float]) -> dict[str, Any]:
    """The fit drawn over the measured wavelengths ``x`` that lie in its span: outside it (e.g. a
    clipped UV plateau the analyzer cut off) the model was never fitted and means nothing."""
    span = fit_span(fit)
    fx = x if span is None else [v for v in x if span[0] <= v <= span[1]]
    return {
        "shape": fit.shape,
        "r2": fit.r2,
        "peaks": fit.peaks,
        "span_nm": list(span) if span else None,
        "wavelength_nm": fx,
        "curve": fit_curve(fit, fx),
    }


def spectrum_payload(spectrum: Spectrum, thin: bool = True) -> dict[str, Any]:
    """A spectrum as the plots and downloads use it: points (thinned for plots) and its fit.

    Spectra and fits are written once and never updated (a new analysis adds a fit row), so the
    payload is cached keyed on the row ids: the experiment page and the live JSON of a long run
    otherwise decode and redraw the same spectra on every view. The returned dict is shared:
    treat it as read-only.
    """
    fit = spectrum.fits[-1] if spectrum.fits else None
    key = (spectrum.id, spectrum.created_at, fit.id if fit is not None else None, thin)
    cached = payload_cache().get(key)
    if cached is not None:
        return cached
    x, y = list(spectrum.wavelength_nm), list(spectrum.value)
    if thin:
        x, y = _thin(x, y)
    payload = {
        "kind": spectrum.kind,
        "unit": spectrum.unit,
        "wavelength_nm": x,
        "value": y,
        "saturated": spectrum.saturated,
        "fit": None if fit is None else _fit_payload(fit, x),
    }
    payload_cache().put(key, payload)
    return payload


def latest_spectra(request: Request) -> dict[str, Any] | None:
    """Spectra of the newest experiment that has any, with fits; None before the first one."""
    session = db()
    number = session.scalar(
        select(func.max(Experiment.number))
        .join(Spectrum, Spectrum.experiment_id == Experiment.id)
        .where(Experiment.request_id == request.id)
    )
    if number is None:
        return None
    experiment = load_experiment(request, int(number))
    return {"number": experiment.number, "spectra": experiment_view(experiment)["spectra"]}


def features_by_experiment(request: Request) -> dict[int, dict[str, float | None]]:
    rows = db().execute(
        select(Experiment.number, Feature.name, Feature.value)
        .join(Feature, Feature.experiment_id == Experiment.id)
        .where(Experiment.request_id == request.id)
    )
    out: dict[int, dict[str, float | None]] = {}
    for number, name, value in rows:
        out.setdefault(number, {})[name] = value
    return out

"""The database schema: plain, well-named tables a person can read with the mysql client.

Conventions that make the tables easy to query by hand:
- times are UTC ``DATETIME`` columns named ``*_at``;
- parameters, targets and spectra are JSON (MySQL/MariaDB ``JSON_EXTRACT`` works on them); a
  spectrum stores ``wavelength_nm`` and ``value`` as two JSON arrays of equal length, in nm and in
  the unit named by ``unit`` (absorbance: "OD", CD: "mdeg", PL: "counts");
- features are one row each (name, value, unit) so ``WHERE name = 'cd_at_exciton_mdeg'`` works;
- the audit log's payloads are encrypted (see :mod:`maosic.db.crypto`); the method name, timing
  and status stay readable so an operator can still see what ran when.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Times to the microsecond everywhere: MySQL/MariaDB's plain DATETIME keeps whole seconds, too
# coarse to order the steps of a run (migration 0007 widens existing columns).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def utcnow() -> datetime:
    # Naive UTC: MySQL DATETIME has no zone, and mixing aware/naive values breaks comparisons.
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Role(enum.StrEnum):
    USER = "user"
    OPERATOR = "operator"
    ADMIN = "admin"


class RequestStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"  # the daemon stopped answering; resumes when it is back
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (RequestStatus.QUEUED, RequestStatus.RUNNING, RequestStatus.PAUSED)


class ExperimentStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the hardware or analysis failed; told to the optimizer as failed
    ABORTED = "aborted"  # cut off by a crash; redone with the same parameters


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Store the readable value ("queued"), not the member name, as VARCHAR for portable SQL.
    return Enum(
        cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.USER)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Notifications when a request ends or pauses (maosic/notify.py): e-mail to ``email``
    # unless turned off, and a JSON POST to ``webhook_url`` when set.
    notify_email: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook_url: Mapped[str | None] = mapped_column(String(500))

    requests: Mapped[list[Request]] = relationship(back_populates="owner")


class Reagent(Base):
    """A stock reagent: liquid ``R_i = [i, v]`` (v in mL) or solid ``R_i^s = [i, w]`` (w in g)."""

    __tablename__ = "reagents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    reagent_index: Mapped[int] = mapped_column(Integer)  # the i of R_i
    state: Mapped[str] = mapped_column(String(8), default="liquid")  # "liquid" | "solid"
    formula: Mapped[str | None] = mapped_column(String(128))
    concentration_mmol_ml: Mapped[float | None] = mapped_column(Float)
    stock_volume_ml: Mapped[float | None] = mapped_column(Float)
    stock_mass_g: Mapped[float | None] = mapped_column(Float)


class Reaction(Base):
    """A stored reaction configuration (the paper's Fig. S10 shape) and its formula form."""

    __tablename__ = "reactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    formula: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Same digest = same chemistry and search space: earlier requests' results seed the optimizer.
    config_sha256: Mapped[str] = mapped_column(String(64), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Lab(Base):
    """A hardware daemon the core can send requests to."""

    __tablename__ = "labs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(255))
    modules: Mapped[list[Any]] = mapped_column(JSON, default=list)  # module ids it reported
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Request(Base):
    """A synthesis request; served first in, first out by ``seq`` within a lab."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_status_seq", "status", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)  # FIFO order of acceptance
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reaction_id: Mapped[int] = mapped_column(ForeignKey("reactions.id"), index=True)
    lab_id: Mapped[int | None] = mapped_column(ForeignKey("labs.id"))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    budget: Mapped[int] = mapped_column(Integer)  # most experiments this request may run
    optimizer: Mapped[str] = mapped_column(String(32))
    seed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, "request_status"), default=RequestStatus.QUEUED
    )
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    stop_reason: Mapped[str | None] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(128))
    current_step: Mapped[str | None] = mapped_column(String(255))
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    # Experiments lost to the lab (a refused command, a lost lease, a recovery): redone with the
    # same parameters, not counted against the budget and not told to the optimizer.
    n_lab_failures: Mapped[int] = mapped_column(Integer, default=0)
    # The fence: the lab (its daemon's lab_uid) and lease epoch under which the request was
    # claimed. A worker writes only while both are still the request's (maosic.fencing).
    lease_lab: Mapped[str | None] = mapped_column(String(64))
    lease_epoch: Mapped[int | None] = mapped_column(BigInteger)
    best_reward: Mapped[float | None] = mapped_column(Float)
    best_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    optimizer_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)

    owner: Mapped[User | None] = relationship(back_populates="requests")
    reaction: Mapped[Reaction] = relationship()
    lab: Mapped[Lab | None] = relationship()
    experiments: Mapped[list[Experiment]] = relationship(
        back_populates="request", order_by="Experiment.number"
    )


class RequestShare(Base):
    """A request shared read-only with a colleague: they see its run page, experiments and
    exports, but cannot cancel it or share it further (cloud/sharing.py)."""

    __tablename__ = "request_shares"
    __table_args__ = (UniqueConstraint("request_id", "user_id", name="uq_request_share"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    user: Mapped[User] = relationship()


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("request_id", "number", name="uq_experiment_request_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1-based position in the campaign
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[ExperimentStatus] = mapped_column(
        _enum(ExperimentStatus, "experiment_status"), default=ExperimentStatus.RUNNING
    )
    reward: Mapped[float | None] = mapped_column(Float)
    reward_uncertainty: Mapped[float | None] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    lab_time_s: Mapped[float | None] = mapped_column(Float)  # time the hardware took (lab clock)
    # Why a failed or aborted experiment failed: "chemistry" (counted, told to the optimizer),
    # "lab" (redone) or "cut off" (the core stopped mid-experiment; redone).
    failure_kind: Mapped[str | None] = mapped_column(String(16))
    # Which optimizer call proposed the point: the request's 1st, 2nd, ... ask (``nreq``
    # points each); a redone experiment keeps its batch. None for rows from before batches.
    batch: Mapped[int | None] = mapped_column(Integer)
    # Who chose the point: "optimizer:<name>", "user:<username>" (a person on the run page or
    # a list of points), "design:<kind>" (a generated design) or "confirm" (a replicate the
    # request ran to confirm its best). None for rows from before this was recorded.
    chosen_by: Mapped[str | None] = mapped_column(String(80))
    # A replicate: the experiment (row id) whose conditions it repeats, in any request.
    replicate_of: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)

    request: Mapped[Request] = relationship(back_populates="experiments")
    spectra: Mapped[list[Spectrum]] = relationship(back_populates="experiment")
    features: Mapped[list[Feature]] = relationship(back_populates="experiment")


class PlannedPoint(Base):
    """A point a request runs before (or instead of) asking its optimizer: a person's proposal,
    a given list or design, a replicate. Taken in ``position`` order; ``experiment_id`` is set
    in the transaction that stores the experiment's result, so a point cut off by a crash is
    run again (maosic/plans.py)."""

    __tablename__ = "planned_points"
    __table_args__ = (Index("ix_planned_points_request_position", "request_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    position: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    chosen_by: Mapped[str] = mapped_column(String(80))
    replicate_of: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Spectrum(Base):
    __tablename__ = "spectra"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "absorbance" | "cd" | "pl"
    unit: Mapped[str] = mapped_column(String(16))
    n_points: Mapped[int] = mapped_column(Integer)
    wavelength_nm: Mapped[list[Any]] = mapped_column(JSON)
    value: Mapped[list[Any]] = mapped_column(JSON)
    saturated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    experiment: Mapped[Experiment] = relationship(back_populates="spectra")
    fits: Mapped[list[PeakFit]] = relationship(back_populates="spectrum")


class PeakFit(Base):
    """One fitted peak model of a spectrum; ``peaks`` lists centre/height/fwhm/area per peak."""

    __tablename__ = "peak_fits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spectrum_id: Mapped[int] = mapped_column(ForeignKey("spectra.id"), index=True)
    shape: Mapped[str] = mapped_column(String(16))
    n_peaks: Mapped[int] = mapped_column(Integer)
    peaks: Mapped[list[Any]] = mapped_column(JSON)
    # {"coefficients": [...], "order": n, "scattering": bool, "span_nm": [lo, hi]}: the
    # analyzer's baseline (maosic.analysis.model.baseline_basis) so the fit can be redrawn.
    baseline: Mapped[Any] = mapped_column(JSON, default=dict)
    r2: Mapped[float | None] = mapped_column(Float)
    rmse: Mapped[float | None] = mapped_column(Float)
    bic: Mapped[float | None] = mapped_column(Float)

    spectrum: Mapped[Spectrum] = relationship(back_populates="fits")


class Feature(Base):
    __tablename__ = "features"
    __table_args__ = (Index("ix_features_experiment_name", "experiment_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))

    experiment: Mapped[Experiment] = relationship(back_populates="features")


class HardwareCommand(Base):
    """Audit log: every call the core sent to a daemon. Payloads are encrypted at rest."""

    __tablename__ = "hardware_commands"
    __table_args__ = (Index("ix_hardware_commands_experiment", "experiment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    lab_id: Mapped[int | None] = mapped_column(ForeignKey("labs.id"))
    method: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    params_enc: Mapped[bytes] = mapped_column(LargeBinary)
    result_enc: Mapped[bytes | None] = mapped_column(LargeBinary(2**24))  # spectra can be large
    sent_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    # Who sent it: a campaign's worker, or "operator:NAME" for a manual session (no request).
    actor: Mapped[str | None] = mapped_column(String(128), index=True)
    lease_epoch: Mapped[int | None] = mapped_column(BigInteger)  # the lease it was sent under


class Attachment(Base):
    """Offline characterization of an experiment (issue 21): a value measured ex situ (an
    absolute PLQY in %) and/or a file (a TEM image, an XRD pattern). Files live here, in the
    database, never on disk: ``filename`` is the uploader's name, shown only, never a path;
    ``media_type`` is what the first bytes say (maosic/attachments.py), not the extension."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # "absolute_plqy", "tem_image", ...
    name: Mapped[str] = mapped_column(String(120))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(16))
    filename: Mapped[str | None] = mapped_column(String(255))
    media_type: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[bytes | None] = mapped_column(LargeBinary(2**24))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Counter(Base):
    """Named monotonic counters (the FIFO sequence), incremented under a row lock."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)

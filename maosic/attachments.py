"""Offline characterization attached to an experiment (issue 21), and the PLQY calibration.

An attachment is a value measured ex situ (an absolute PLQY in %, a size in nm), a file (a
TEM image, an XRD pattern), or both. Everything arriving here is treated as hostile:

* a file is at most :data:`MAX_FILE_BYTES`; its media type comes from its first bytes (PNG,
  JPEG, TIFF, PDF, or plain text / CSV that decodes as UTF-8 with no control characters),
  never from its name or from what the uploader claims; anything else is refused;
* the original file name is kept for display only and is never used as a path (files are
  stored in the database);
* a value is a finite number; an absolute PLQY is a percentage from 0 to 100;
* kinds come from :data:`KINDS`; names, units and file names are printable and short.

``calibration(session, reaction_id)`` pairs each experiment's in-situ PLQY proxy (feature
``plqy_proxy``, a.u.) with the absolute PLQY attached to it and fits, by least squares,
``absolute = a + b * proxy`` with the standard errors of a and b and the residual standard
deviation. A target ``{"metric": "max_plqy", "calibration": {"intercept": a, "slope": b}}``
then scores experiments in absolute PLQY (maosic/analysis/reward.py).
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from maosic.db.models import Attachment, Experiment, Feature, Request

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_NAME = 120
MAX_UNIT = 16
MAX_FILENAME = 255
MAX_PER_EXPERIMENT = 100  # a few images and numbers each; far more is an accident or a flood
PROXY_FEATURE = "plqy_proxy"  # the in-situ PLQY proxy (maosic/analysis/features.py)
ABSOLUTE_PLQY = "absolute_plqy"
MIN_PAIRS = 3  # a straight line with uncertainties needs one degree of freedom

# kind -> (what it is, whether it carries a value, whether a file)
KINDS: dict[str, str] = {
    ABSOLUTE_PLQY: "absolute PLQY measured ex situ (%)",
    "tem_image": "TEM image",
    "xrd_pattern": "XRD pattern (image or data file)",
    "note": "a value or remark",
    "file": "any other file",
}
# Media types, recognised by their first bytes only.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
)
MEDIA_TYPES = ("image/png", "image/jpeg", "image/tiff", "application/pdf", "text/plain", "text/csv")
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/tiff": "tif",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
}


class AttachmentError(ValueError):
    """Refused input; ``field`` names what was wrong (a form field, an argument)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def sniff(content: bytes) -> str:
    """The media type the bytes themselves show; AttachmentError for anything not allowed
    (an HTML page called ``image.png`` is refused, whatever its name says)."""
    for magic, media_type in _SIGNATURES:
        if content.startswith(magic):
            return media_type
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachmentError(
            "file", "not a PNG, JPEG, TIFF, PDF or UTF-8 text file (judged by its content)"
        ) from None
    text = text.removeprefix("\ufeff")
    if any(unicodedata.category(c) == "Cc" and c not in "\t\r\n" for c in text):
        raise AttachmentError("file", "a text file with control characters (binary?)")
    head = text.lstrip()[:512].lower()
    if head.startswith(("<!doctype", "<html", "<?xml", "<svg", "<script")) or "<script" in head:
        raise AttachmentError("file", "markup (HTML/XML/SVG) is not accepted")
    if not text.strip():
        raise AttachmentError("file", "empty")
    return "text/csv" if _looks_csv(text) else "text/plain"


def _looks_csv(text: str) -> bool:
    """Two or more columns, the same number on each of the first lines (comma, tab or ';')."""
    lines = [line for line in text.splitlines()[:20] if line.strip() and line[0] not in "#%"]
    if len(lines) < 2:
        return False
    for sep in (",", "\t", ";"):
        counts = {line.count(sep) for line in lines}
        if len(counts) == 1 and counts.pop() >= 1:
            return True
    return False


def _printable(value: Any, field: str, limit: int, optional: bool = False) -> str | None:
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if not isinstance(value, str):
        raise AttachmentError(field, f"must be text, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise AttachmentError(field, "required")
    if len(text) > limit:
        raise AttachmentError(field, f"at most {limit} characters, got {len(text)}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in text):
        raise AttachmentError(field, "only printable characters")
    return text


def _display_filename(filename: Any) -> str | None:
    """The uploader's file name, for display only: its last path part, printable, short."""
    if filename is None or filename == "":
        return None
    if not isinstance(filename, str):
        raise AttachmentError("filename", "must be text")
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] not in "CZ" or c == " ")
    return base.strip()[:MAX_FILENAME] or None


def check_value(value: Any, kind: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise AttachmentError("value", "must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise AttachmentError("value", f"not a number: {value[:40]!r}") from None
    if not isinstance(value, int | float):
        raise AttachmentError("value", "must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise AttachmentError("value", "must be a finite number")
    if kind == ABSOLUTE_PLQY and not 0.0 <= number <= 100.0:
        raise AttachmentError("value", f"an absolute PLQY is 0 to 100 %, got {number:g}")
    return number


@dataclass
class Checked:
    kind: str
    name: str
    value: float | None
    unit: str | None
    filename: str | None
    media_type: str | None
    content: bytes | None


def check(
    kind: Any,
    name: Any = None,
    value: Any = None,
    unit: Any = None,
    content: bytes | None = None,
    filename: Any = None,
) -> Checked:
    """One attachment, checked whole; AttachmentError names the first problem."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise AttachmentError("kind", f"one of {', '.join(KINDS)}")
    number = check_value(value, kind)
    unit_text = _printable(unit, "unit", MAX_UNIT, optional=True)
    if kind == ABSOLUTE_PLQY:
        if number is None:
            raise AttachmentError("value", "an absolute PLQY needs its value (%)")
        if unit_text not in (None, "%"):
            raise AttachmentError("unit", "an absolute PLQY is in %")
        unit_text = "%"
    media_type = None
    if content is not None:
        if not isinstance(content, bytes | bytearray):
            raise AttachmentError("file", "must be bytes")
        if len(content) > MAX_FILE_BYTES:
            raise AttachmentError(
                "file", f"{len(content)} bytes, more than the {MAX_FILE_BYTES // 2**20} MB limit"
            )
        if not content:
            raise AttachmentError("file", "empty")
        content = bytes(content)
        media_type = sniff(content)
    if kind in ("tem_image", "xrd_pattern", "file") and content is None:
        raise AttachmentError("file", f"a {KINDS[kind]} needs its file")
    if number is None and content is None:
        raise AttachmentError("value", "give a value, a file or both")
    label = _printable(name, "name", MAX_NAME, optional=True) or KINDS[kind].split(" (")[0]
    return Checked(
        kind=kind,
        name=label[:MAX_NAME],
        value=number,
        unit=unit_text,
        filename=_display_filename(filename) if content is not None else None,
        media_type=media_type,
        content=content,
    )


def add(
    session: Session,
    experiment_id: int,
    user_id: int | None,
    kind: Any,
    name: Any = None,
    value: Any = None,
    unit: Any = None,
    content: bytes | None = None,
    filename: Any = None,
) -> Attachment:
    """Check and store one attachment of an experiment (the caller commits)."""
    checked = check(kind, name, value, unit, content, filename)
    if session.get(Experiment, experiment_id) is None:
        raise AttachmentError("experiment", f"no experiment {experiment_id}")
    if len(list_for(session, experiment_id)) >= MAX_PER_EXPERIMENT:
        raise AttachmentError("experiment", f"at most {MAX_PER_EXPERIMENT} attachments")
    row = Attachment(
        experiment_id=experiment_id,
        kind=checked.kind,
        name=checked.name,
        value=checked.value,
        unit=checked.unit,
        filename=checked.filename,
        media_type=checked.media_type,
        content=checked.content,
        size_bytes=len(checked.content) if checked.content is not None else None,
        sha256=hashlib.sha256(checked.content).hexdigest() if checked.content else None,
        added_by=user_id,
    )
    session.add(row)
    session.flush()
    return row


def list_for(session: Session, experiment_id: int) -> list[Attachment]:
    """An experiment's attachments, oldest first, content included (pages and crates use
    :func:`summaries`, which leaves the files out)."""
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.experiment_id == experiment_id)
            .order_by(Attachment.id)
        )
    )


def summaries(session: Session, experiment_ids: list[int]) -> list[dict[str, Any]]:
    """Attachments of these experiments without their file content (for pages and crates)."""
    if not experiment_ids:
        return []
    cols = (
        Attachment.id,
        Attachment.experiment_id,
        Attachment.kind,
        Attachment.name,
        Attachment.value,
        Attachment.unit,
        Attachment.filename,
        Attachment.media_type,
        Attachment.size_bytes,
        Attachment.sha256,
        Attachment.created_at,
    )
    rows = session.execute(
        select(*cols)
        .where(Attachment.experiment_id.in_(experiment_ids))
        .order_by(Attachment.experiment_id, Attachment.id)
    )
    return [dict(row._mapping) for row in rows]


# -- calibration -------------------------------------------------------------------------------
@dataclass
class Fit:
    """``absolute = intercept + slope * proxy`` with standard errors and residual SD."""

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    residual_sd: float
    n: int
    r2: float | None

    def target(self) -> dict[str, Any]:
        """The calibrated target, frozen: submit it as is to score in absolute PLQY (%)."""
        return {
            "metric": "max_plqy",
            # six significant digits: far below the fit's own standard errors, and a target
            # a person can read and paste
            "calibration": {
                "intercept": float(f"{self.intercept:.6g}"),
                "slope": float(f"{self.slope:.6g}"),
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "slope": self.slope,
            "intercept_se": self.intercept_se,
            "slope_se": self.slope_se,
            "residual_sd": self.residual_sd,
            "n": self.n,
            "r2": self.r2,
        }


def fit_line(x: list[float], y: list[float]) -> Fit | None:
    """Ordinary least squares of y on x; None below :data:`MIN_PAIRS` pairs or when every x
    is the same (no slope to fit)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xs)
    if n < MIN_PAIRS or n != len(ys):
        return None
    sxx = float(np.sum((xs - xs.mean()) ** 2))
    if not sxx > 0:
        return None
    design = np.column_stack([np.ones(n), xs])
    coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
    residuals = ys - design @ coef
    dof = n - 2
    s2 = float(residuals @ residuals) / dof
    cov = s2 * np.linalg.inv(design.T @ design)
    syy = float(np.sum((ys - ys.mean()) ** 2))
    return Fit(
        intercept=float(coef[0]),
        slope=float(coef[1]),
        intercept_se=float(math.sqrt(cov[0, 0])),
        slope_se=float(math.sqrt(cov[1, 1])),
        residual_sd=math.sqrt(s2),
        n=n,
        r2=1.0 - float(residuals @ residuals) / syy if syy > 0 else None,
    )


@dataclass
class Calibration:
    pairs: list[dict[str, Any]]  # request_id, experiment number, proxy, absolute
    fit: Fit | None


def calibration(
    session: Session, reaction_id: int, request_ids: list[int] | None = None
) -> Calibration:
    """Pairs (in-situ PLQY proxy, absolute PLQY) over every experiment of the reaction's
    requests (only ``request_ids`` when given: those a web user may see), and their
    straight-line fit (None below :data:`MIN_PAIRS` pairs). An experiment with several
    absolute PLQY values contributes their mean."""
    query = (
        select(
            Experiment.id,
            Experiment.request_id,
            Experiment.number,
            Feature.value,
            Attachment.value,
        )
        .join(Request, Request.id == Experiment.request_id)
        .join(Feature, (Feature.experiment_id == Experiment.id) & (Feature.name == PROXY_FEATURE))
        .join(Attachment, Attachment.experiment_id == Experiment.id)
        .where(
            Request.reaction_id == reaction_id,
            Attachment.kind == ABSOLUTE_PLQY,
            Attachment.value.is_not(None),
            Feature.value.is_not(None),
        )
        .order_by(Experiment.request_id, Experiment.number, Attachment.id)
    )
    if request_ids is not None:
        query = query.where(Experiment.request_id.in_(request_ids))
    rows = session.execute(query)
    grouped: dict[int, dict[str, Any]] = {}
    for exp_id, request_id, number, proxy, absolute in rows:
        if not (math.isfinite(proxy) and math.isfinite(absolute)):
            continue
        entry = grouped.setdefault(
            exp_id,
            {"request_id": request_id, "number": number, "proxy": float(proxy), "values": []},
        )
        entry["values"].append(float(absolute))
    pairs = [
        {
            "request_id": e["request_id"],
            "number": e["number"],
            "proxy": e["proxy"],
            "absolute": sum(e["values"]) / len(e["values"]),
        }
        for e in grouped.values()
    ]
    fit = fit_line([p["proxy"] for p in pairs], [p["absolute"] for p in pairs])
    return Calibration(pairs=pairs, fit=fit)


def extension(media_type: str | None) -> str:
    return EXTENSIONS.get(media_type or "", "bin")

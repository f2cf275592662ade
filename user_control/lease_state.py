"""The lab leases this terminal user holds, kept between invocations of the CLI.

Every ``python -m user_control ...`` is a new process, so the epoch ``lease take`` was granted
must be written down for the next command to carry it. It is kept in one JSON file per user
(setting ``lease_file``, default ``$XDG_CONFIG_HOME/maosic/leases.json``), readable by that user
only (0600, like the other files of a user's settings), keyed by the daemon's URL so that leases of
several labs do not mix::

    {"https://lab-pc:8888/": {"epoch": 12, "holder": "operator:alice", "ttl_s": 600.0,
                              "lab_uid": "..."}}

The daemon remains the judge: a saved epoch it no longer honours is refused there (LEASE_LOST)
and then forgotten here.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from user_control.errors import UsageError

FILE_NAME = "leases.json"


def default_lease_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/maosic/leases.json`` (``~/.config/maosic/leases.json``)."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "maosic" / FILE_NAME


def url_key(url: str) -> str:
    """``http://h:8888`` and ``http://h:8888/`` are the same daemon."""
    return url.rstrip("/") + "/"


@dataclass(frozen=True)
class SavedLease:
    epoch: int
    holder: str
    ttl_s: float  # renewed for this long with each moving command
    lab_uid: str | None = None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"lease file {path}: cannot read it ({exc}); delete it") from None
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``data``, the new file created 0600 from the start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".leases-", dir=path.parent)  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise UsageError(f"lease file {path}: cannot write it ({exc.strerror})") from None


def load(path: Path, url: str) -> SavedLease | None:
    """The lease saved for the daemon at ``url``, if any."""
    entry = _read(path).get(url_key(url))
    if not isinstance(entry, dict):
        return None
    try:
        return SavedLease(
            int(entry["epoch"]),
            str(entry["holder"]),
            float(entry["ttl_s"]),
            entry.get("lab_uid"),
        )
    except (KeyError, TypeError, ValueError):
        return None


def save(path: Path, url: str, lease: SavedLease) -> None:
    data = _read(path)
    data[url_key(url)] = asdict(lease)
    _write(path, data)


def drop(path: Path, url: str) -> None:
    data = _read(path)
    if data.pop(url_key(url), None) is not None:
        _write(path, data)

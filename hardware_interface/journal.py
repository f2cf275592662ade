"""The daemon's journal on the lab PC: what it believes about the lab, surviving a restart.

The core's database is not the daemon's to use (it may be on another machine, or down), so the
daemon keeps its own small JSON file: the lease epoch and holder, the lab's identity, the stock
ledger and the physical state it believes the lab is in (what each syringe holds, the heater's
setpoint, where the arm is). Each write replaces the whole file atomically (write a temporary
file, fsync, rename), so a crash leaves either the old or the new journal, never half of one.
Without a path the journal lives in memory only (tests, throwaway simulations).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_JOURNAL_BYTES = 1_000_000  # a journal is a few kB; a bigger file is not ours


class JournalError(RuntimeError):
    """The journal file cannot be read or written (names the file and why)."""


class Journal:
    """A dict of JSON values kept in one file; thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        if path is not None and path.exists():
            self._data = self._load(path)
        if not isinstance(self._data.get("lab_uid"), str):
            # The lab's identity: the core records it with each claim, so that a lease epoch
            # is compared only with epochs of the same lab.
            self.write(lab_uid=uuid.uuid4().hex)

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            if path.stat().st_size > MAX_JOURNAL_BYTES:
                raise JournalError(f"journal {path}: larger than {MAX_JOURNAL_BYTES} bytes")
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise JournalError(f"journal {path}: cannot be read ({exc})") from exc
        if not isinstance(data, dict):
            raise JournalError(f"journal {path}: not a JSON object")
        return data

    @property
    def lab_uid(self) -> str:
        return str(self._data["lab_uid"])

    def read(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return copy.deepcopy(self._data.get(key, default))

    def write(self, **entries: Any) -> None:
        """Set ``entries`` and persist the whole journal before returning."""
        with self._lock:
            self._data.update(copy.deepcopy(entries))
            if self.path is None:
                return
            text = json.dumps(self._data, indent=1, sort_keys=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise JournalError(f"journal {self.path}: cannot be written ({exc})") from exc

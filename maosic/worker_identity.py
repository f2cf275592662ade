"""Stable worker names: the same core, restarted, drives its lab again under the same name.

The daemon gives a lease back at once to the holder that had it (a restarted core), and makes
any other holder wait for the expiry. So the name must be the same after a restart, and never
shared by two live processes: the name is ``LAB@HOST:INSTANCE:SLOT``. INSTANCE is a random
id made once per instance folder (``instance/worker.id``), so two instances on one machine
differ; SLOT is the first of the instance's slot files this process can lock
(``instance/worker-LAB-SLOT.lock``, flock). A process that dies releases its lock with it; a
second core started on the same instance takes the next slot.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import socket
from pathlib import Path
from typing import IO

MAX_SLOTS = 64
_held: dict[str, IO[bytes]] = {}  # name -> its lock file, open while the worker runs


class NoSlot(RuntimeError):
    """Every slot of this instance is locked by a live process."""


def stable_worker_name(instance_dir: Path, lab: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", lab)[:40] or "lab"
    instance_dir.mkdir(parents=True, exist_ok=True)
    instance = _instance_id(instance_dir / "worker.id")
    for slot in range(MAX_SLOTS):
        path = instance_dir / f"worker-{safe}-{slot}.lock"
        handle = open(path, "ab")  # noqa: SIM115 - held open on purpose: the lock is the file's
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        os.chmod(path, 0o600)
        name = f"{lab}@{socket.gethostname()}:{instance}:{slot}"
        _held[name] = handle
        return name
    raise NoSlot(f"all {MAX_SLOTS} worker slots of {instance_dir} are locked by live cores")


def release_worker_name(name: str) -> None:
    """Give the name's slot back (a core stopped in a process that goes on, e.g. a test): the
    next core started on this instance takes the same name, as after a restart."""
    handle = _held.pop(name, None)
    if handle is not None:
        handle.close()  # closing the file drops its flock


def _instance_id(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text(encoding="ascii", errors="replace").strip()
        if re.fullmatch(r"[0-9a-f]{8}", text):
            return text
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # damaged: make a new one
    new = secrets.token_hex(4)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(new + "\n")
    return new

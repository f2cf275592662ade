"""Where the `maosicsim://<lab>/<module>` serial URL handler finds its emulators."""

from __future__ import annotations

import threading

from hardware_interface.sim.emulators.base import LineEmulator

_lock = threading.Lock()
_labs: dict[str, dict[str, LineEmulator]] = {}


def register_lab(lab_key: str, emulators: dict[str, LineEmulator]) -> None:
    """Make `emulators` (module id -> emulator) reachable as maosicsim://<lab_key>/<module>."""
    with _lock:
        _labs[lab_key] = dict(emulators)


def unregister_lab(lab_key: str) -> None:
    with _lock:
        _labs.pop(lab_key, None)


def lookup(lab_key: str, module: str) -> LineEmulator:
    """The emulator behind a URL; KeyError names what is missing."""
    with _lock:
        lab = _labs.get(lab_key)
        if lab is None:
            raise KeyError(f"no simulated lab {lab_key!r} (known: {sorted(_labs)})")
        emulator = lab.get(module)
        if emulator is None:
            raise KeyError(f"simulated lab {lab_key!r} has no module {module!r}: {sorted(lab)}")
        return emulator


def url(lab_key: str, module: str) -> str:
    return f"maosicsim://{lab_key}/{module}"

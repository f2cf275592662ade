"""What every command handler gets: settings, output streams and lazily opened endpoints."""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hardware_interface.errors import LEASE_HELD, LEASE_LOST
from hardware_interface.lease import OPEN_METHODS
from user_control import lease_state
from user_control.endpoint import Endpoint
from user_control.errors import Refused, UsageError
from user_control.settings import ClientSettings


@dataclass
class Context:
    """Shared by one CLI run or one interactive shell session (connections are reused)."""

    settings: ClientSettings
    out: TextIO
    err: TextIO
    as_json: bool = False
    _endpoints: dict[str, Endpoint] = field(default_factory=dict)
    _lab: dict[str, Any] | None = None

    def endpoint(self, which: str) -> Endpoint:
        """The ``"hardware"`` daemon or the ``"core"``, connected on first use."""
        if which not in self._endpoints:
            s = self.settings
            headers = s.core_headers(_ask_password) if which == "core" else {}
            self._endpoints[which] = Endpoint(
                which, timeout_s=s.timeout_s, retries=s.retries, headers=headers,
                **s.endpoint(which),
            )  # fmt: skip
        return self._endpoints[which]

    def hardware(self, method: str, timeout_s: float | None = None, **params: Any) -> Any:
        """Call the daemon. A call that moves the lab carries the lease saved by `lease take`
        for this daemon, renewed first for its TTL (a manual hold lasts that long after the
        last command); without one it runs only while nobody holds the lab."""
        endpoint = self.endpoint("hardware")
        held = None if method in OPEN_METHODS else self.saved_lease()
        try:
            if held is not None:
                try:
                    renewed = endpoint.call("lease.renew", epoch=held.epoch, ttl_s=held.ttl_s)
                except Refused as exc:
                    raise Refused(f"{method} not sent: {exc.message}", exc.code, exc.data) from None
                self._check_renewed(held, renewed, method)
                endpoint.lease_epoch = held.epoch
            return endpoint.call(method, timeout_s=timeout_s, **params)
        except Refused as exc:
            raise self.lease_refusal(exc) from None
        finally:
            endpoint.lease_epoch = None

    def _check_renewed(
        self, held: lease_state.SavedLease, renewed: dict[str, Any], method: str
    ) -> None:
        """The lease renewed under the saved epoch must be the saved one: the same URL may now
        reach another lab (whose epochs count anew) or that epoch be someone else's."""
        lab_uid = renewed.get("lab_uid")
        if renewed.get("holder") == held.holder and (not held.lab_uid or lab_uid == held.lab_uid):
            return
        raise Refused(  # as a lost lease: hardware() forgets it and says what to do
            f"{method} not sent: lease epoch {held.epoch} is held by {renewed.get('holder')} "
            f"(lab {lab_uid}), not by your saved lease of lab {held.lab_uid}",
            LEASE_LOST,
        )

    def saved_lease(self) -> lease_state.SavedLease | None:
        """The lease `lease take` saved for this daemon, if any."""
        return lease_state.load(Path(self.settings.lease_file), self.settings.hardware_url)

    def lease_refusal(self, exc: Refused) -> Refused:
        """``exc`` with what to do when it is about the lease; a lost lease is forgotten."""
        if exc.code == LEASE_LOST:
            lease_state.drop(Path(self.settings.lease_file), self.settings.hardware_url)
            hint = "the saved lease is forgotten; see `lease`, and `lease take` to take it again"
        elif exc.code == LEASE_HELD:
            hint = "take the lab with `lease take` (`lease take --take` pre-empts the holder)"
        else:
            return exc
        return Refused(f"{exc.message}; {hint}", exc.code, exc.data)

    def core(self, method: str, **params: Any) -> Any:
        return self.endpoint("core").call(method, **params)

    def lab(self) -> dict[str, Any]:
        """``system.describe`` of the daemon, asked once per session (modules do not change)."""
        if self._lab is None:
            self._lab = self.hardware("system.describe")
        return self._lab

    def modules_of_kind(self, kind: str) -> list[str]:
        modules = self.lab().get("modules", {})
        return [mid for mid, info in modules.items() if info.get("kind") == kind]

    def emit(self, data: Any, lines: list[str]) -> None:
        """Print ``lines`` for a person, or ``data`` as JSON under ``--json``."""
        if self.as_json:
            self.out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            for line in lines:
                self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()


def _ask_password(prompt: str) -> str:
    """The account's password from the terminal; a script must set MAOSIC_PASSWORD instead."""
    if not sys.stdin.isatty():
        raise UsageError(f"{prompt.rstrip(': ')}: set MAOSIC_PASSWORD (no terminal to ask on)")
    return getpass.getpass(prompt)

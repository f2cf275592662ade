"""What every command handler gets: settings, output streams and lazily opened endpoints."""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from user_control.endpoint import Endpoint
from user_control.errors import UsageError
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
        return self.endpoint("hardware").call(method, timeout_s=timeout_s, **params)

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

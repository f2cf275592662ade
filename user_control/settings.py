"""Connection settings of the terminal client: defaults < config file < environment < flags.

The config file is TOML with flat keys named like the fields of :class:`ClientSettings`::

    hardware_url = "https://lab-pc.example:8888/"
    hardware_token = "..."
    ca_file = "/etc/maosic/ca.pem"
    core_url = "http://cloud.example:9999/"
    user = "demo"

It is ``--config FILE``, else ``$MAOSIC_CLIENT_CONFIG``, else ``$XDG_CONFIG_HOME/maosic/
client.toml`` (``~/.config/maosic/client.toml``); the default file may be absent, a named one
may not. Environment variables are the field name upper-cased with the ``MAOSIC_`` prefix, the
same names the server side uses (``MAOSIC_HARDWARE_URL``, ``MAOSIC_CORE_URL``, ...).
``ca_file`` and ``client_cert`` apply to both endpoints unless the ``hardware_``/``core_``
variant is set.

The core authenticates every call (docs/security.md). On the core's own machine the terminal
needs nothing more: with no ``core_token`` set and a loopback ``core_url``, the installation's
token is read from ``$MAOSIC_INSTANCE_PATH/core.token`` (default ``instance/core.token`` of this
checkout) when this account may read it, and ``user`` names the account acted for. Elsewhere,
``user`` is your account and its password comes from ``MAOSIC_PASSWORD`` or is asked for once.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from maosic.config import CORE_TOKEN_FILE, PROJECT_ROOT
from user_control.errors import UsageError
from user_control.lease_state import default_lease_path

ENV_PREFIX = "MAOSIC_"
CONFIG_ENV = "MAOSIC_CLIENT_CONFIG"
USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # the web site's rule for account names


@dataclass
class ClientSettings:
    """Where the daemon and the core are and how to authenticate. Times in seconds."""

    hardware_url: str = "http://127.0.0.1:8888/"
    core_url: str = "http://127.0.0.1:9999/"
    hardware_token: str = ""  # bearer token for the daemon
    core_token: str = ""  # bearer token for the core
    ca_file: str = ""  # CA bundle that signed the servers' certificates (both endpoints)
    client_cert: str = ""  # PEM with client certificate and key, mutual TLS (both endpoints)
    hardware_ca_file: str = ""
    hardware_client_cert: str = ""
    core_ca_file: str = ""
    core_client_cert: str = ""
    user: str = ""  # your account at the core (or, with the installation token, the one acted for)
    password: str = ""  # your account's password (MAOSIC_PASSWORD); asked for when empty
    timeout_s: float = 600.0  # longest wait for one answer (heater settling may need more)
    retries: int = 2  # extra connection attempts before "unreachable"
    history_file: str = "~/.maosic_history"  # the interactive shell's command history
    # Where the lab leases taken with `lease take` are kept between commands (0600 JSON);
    # empty: $XDG_CONFIG_HOME/maosic/leases.json (see user_control.lease_state).
    lease_file: str = ""

    def endpoint(self, which: str) -> dict[str, str]:
        """URL, token, CA file and client certificate of ``which`` ("hardware" or "core")."""
        table = {
            "hardware": (
                self.hardware_url,
                self.hardware_token,
                self.hardware_ca_file or self.ca_file,
                self.hardware_client_cert or self.client_cert,
            ),
            "core": (
                self.core_url,
                self.core_token,
                self.core_ca_file or self.ca_file,
                self.core_client_cert or self.client_cert,
            ),
        }
        url, token, ca_file, client_cert = table[which]
        return {"url": url, "token": token, "ca_file": ca_file, "client_cert": client_cert}

    def core_headers(self, ask_password: Callable[[str], str]) -> dict[str, str]:
        """The core's credentials as HTTP headers: the installation token (acting for ``user``)
        or ``user``'s own password, asked for through ``ask_password(prompt)`` when not set."""
        if self.core_token:
            headers = {"Authorization": f"Bearer {self.core_token}"}
            if self.user:
                headers["X-MAOSIC-User"] = self.user
            return headers
        if not self.user:
            return {}  # the core will say what it needs
        if not self.password:
            self.password = ask_password(f"password of {self.user} at {self.core_url}: ")
        pair = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}


_FIELDS: dict[str, type] = {
    f.name: {"str": str, "float": float, "int": int}[str(f.type)]
    for f in dataclasses.fields(ClientSettings)
}
# Fields whose command-line option is not simply the field name with dashes.
_OPTIONS: dict[str, str] = {"timeout_s": "--timeout"}
_URL_FIELDS = ("hardware_url", "core_url")
_FILE_FIELDS = (
    "ca_file",
    "client_cert",
    "hardware_ca_file",
    "hardware_client_cert",
    "core_ca_file",
    "core_client_cert",
)


def default_config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "maosic" / "client.toml"


def _coerce(name: str, raw: Any, source: str) -> Any:
    target = _FIELDS[name]
    if target is str and not isinstance(raw, str):
        raise UsageError(f"setting {name!r} from {source}: expected a string, got {raw!r}")
    try:
        value = target(raw)
    except (TypeError, ValueError):
        raise UsageError(
            f"setting {name!r} from {source}: cannot read {raw!r} as {target.__name__}"
        ) from None
    if name in _URL_FIELDS and not str(value).startswith(("http://", "https://")):
        raise UsageError(f"setting {name!r} from {source}: {value!r} is not an http(s):// URL")
    if name == "user" and value and not USERNAME.fullmatch(value):
        raise UsageError(
            f"setting {name!r} from {source}: a username has 1-64 letters, digits, '.', '-', '_'"
        )
    if name == "timeout_s" and not value > 0:
        raise UsageError(f"setting {name!r} from {source}: must be > 0 s, got {value!r}")
    if name == "retries" and value < 0:
        raise UsageError(f"setting {name!r} from {source}: must be >= 0, got {value!r}")
    if name in _FILE_FIELDS and value and not Path(value).expanduser().is_file():
        raise UsageError(f"setting {name!r} from {source}: no file {value!r}")
    if name in _FILE_FIELDS and value:
        value = str(Path(value).expanduser())
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"config file {path}: cannot read it: {exc.strerror}") from None
    for key in data:
        if key not in _FIELDS:
            raise UsageError(
                f"config file {path}: unknown setting {key!r}; known: {', '.join(_FIELDS)}"
            )
    return data


def load_client_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> ClientSettings:
    """Settings from defaults, the config file, ``MAOSIC_*`` variables, then ``flags``.

    ``flags`` maps field names to values given on the command line; ``None`` values are
    ignored (the flag was not given). A bad value raises :class:`UsageError` naming the setting
    and where it came from.
    """
    env = dict(os.environ if environ is None else environ)
    settings = ClientSettings()
    named = config_file or env.get(CONFIG_ENV)
    path = Path(named).expanduser() if named else default_config_path(env)
    if path.exists() or named:
        if not path.exists():
            raise UsageError(f"config file {path} does not exist")
        for key, raw in _read_file(path).items():
            setattr(settings, key, _coerce(key, raw, f"config file {path}"))
    for key in _FIELDS:
        var = ENV_PREFIX + key.upper()
        if env.get(var):
            setattr(settings, key, _coerce(key, env[var], f"environment variable {var}"))
    for key, raw in (flags or {}).items():
        if raw is None:
            continue
        if key not in _FIELDS:
            raise UsageError(f"unknown setting {key!r}")
        option = _OPTIONS.get(key, "--" + key.replace("_", "-"))
        setattr(settings, key, _coerce(key, raw, f"option {option}"))
    if not settings.lease_file:
        settings.lease_file = str(default_lease_path(env))
    settings.lease_file = str(Path(settings.lease_file).expanduser())
    if not settings.core_token and _is_loopback(settings.core_url):
        settings.core_token = _installation_token(env)
    return settings


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _installation_token(env: Mapping[str, str]) -> str:
    """The core's installation token of this machine, if this account may read it, else ''.
    Only ever sent to a loopback core: it must not leave the machine it guards."""
    folder = Path(env.get(ENV_PREFIX + "INSTANCE_PATH") or PROJECT_ROOT / "instance")
    try:
        return (folder / CORE_TOKEN_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""

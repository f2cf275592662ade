"""Settings for every MAOSIC component: defaults < instance file < environment.

The instance file is TOML (``instance/maosic.toml`` by default, or the path in
``MAOSIC_CONFIG``); environment variables are the setting's name upper-cased with the
``MAOSIC_`` prefix, e.g. ``MAOSIC_DATABASE_URL``. Later layers win, so an operator can
override one value on the command line without editing the file.
"""

from __future__ import annotations

import dataclasses
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "MAOSIC_"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting and its source."""


def _default_instance() -> Path:
    return PROJECT_ROOT / "instance"


@dataclass
class Settings:
    """All settings with their defaults. Ports are TCP ports on ``host``."""

    instance_path: Path = field(default_factory=_default_instance)
    database_url: str = ""  # empty: SQLite file instance/maosic.sqlite3
    hardware_url: str = "http://127.0.0.1:8888/"
    labs: str = ""  # several daemons: "name=url,name=url"; empty: one lab at hardware_url
    core_url: str = "http://127.0.0.1:9999/"
    secret_key: str = ""  # empty: generated once and kept in instance/secret_key
    host: str = "127.0.0.1"
    web_port: int = 5000
    core_port: int = 9999
    hardware_port: int = 8888
    # All-in-one start (run.py): the second simulated lab, the Cs3Cu2I5 rig, behind the same
    # queue as the CsPbBr3 rig on hardware_port, so every shipped example runs; 0: none.
    second_lab_port: int = 8889
    hardware_token: str = ""  # bearer token sent to the daemon, if it requires one
    # Bearer token of this installation's own services (the web site, terminals on this
    # machine) at the core's handler; empty: generated once into instance/core.token.
    core_token: str = ""
    hardware_ca_file: str = ""  # CA that signed the daemon's certificate (TLS)
    hardware_client_cert: str = ""  # PEM with client certificate and key (mutual TLS)
    log_key_file: str = ""  # Fernet key(s) that encrypt the audit log; empty: instance/log.key
    sim_speed: float = 0.0  # simulated lab: 0 = waits cost no wall time, 1 = real time
    sim_seed: int = 0
    worker_poll_s: float = 0.5  # how often an idle worker looks at the queue
    heartbeat_s: float = 10.0  # a running campaign writes a heartbeat this often
    paused_retry_s: float = 5.0  # a paused request (lab down) is tried again this often
    stale_after_s: float = 60.0  # no heartbeat for this long: the worker died, take over
    # The lab lease a worker holds while it runs a request (renewed every third of it): another
    # core takes a lab over this long after its holder stopped renewing (froze, died).
    lease_ttl_s: float = 30.0
    # Notifications (maosic/notify.py): e-mail through this SMTP server (empty: no e-mail) to
    # the owner's address; webhooks go to the URL on the owner's account.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "maosic@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    site_url: str = ""  # the web site's address as users reach it, for links in notices
    webhook_allow_private: bool = False  # call webhooks on private/loopback addresses too
    rpc_timeout_s: float = 600.0  # longest single hardware call (heater settling, long pumps)
    rpc_retries: int = 4  # retries with backoff before a request is paused
    # The demo accounts (demo, operator, admin with the passwords in README.md) are created once
    # by the all-in-one start on a fresh SQLite instance; a deployment switches them off.
    demo_accounts: bool = True
    # The web site behind TLS: session cookies only over HTTPS.
    session_cookie_secure: bool = False
    # How many reverse proxies stand in front of the web site; their X-Forwarded-For/-Proto
    # headers are trusted that many hops deep (0: the peer address is the client's).
    trusted_proxies: int = 0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_path / 'maosic.sqlite3'}"

    @property
    def resolved_log_key_file(self) -> Path:
        return Path(self.log_key_file) if self.log_key_file else self.instance_path / "log.key"


def _coerce(name: str, raw: object, target: type, source: str) -> object:
    """Convert ``raw`` to the field's type; an error names the setting and its source."""
    try:
        if target is Path:
            return Path(str(raw))
        if target is bool:
            word = str(raw).strip().lower()
            if word not in _BOOL_WORDS:
                raise ValueError(word)
            return _BOOL_WORDS[word]
        value = target(raw)
        if target is int and value < 0:
            raise ValueError(value)
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name!r} from {source}: cannot read {raw!r} as {target.__name__}"
        ) from exc


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}  # fmt: skip

_TYPES: dict[str, type] = {
    "Path": Path,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
}


def load_settings(
    config_file: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Settings from defaults, then the instance TOML file, then ``MAOSIC_*`` variables."""
    env = dict(os.environ if environ is None else environ)
    settings = Settings()
    fields = {f.name: _TYPES[str(f.type)] for f in dataclasses.fields(Settings)}
    if env.get(ENV_PREFIX + "INSTANCE_PATH"):
        settings.instance_path = Path(env[ENV_PREFIX + "INSTANCE_PATH"])
    path = Path(
        config_file or env.get(ENV_PREFIX + "CONFIG") or settings.instance_path / "maosic.toml"
    )
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        for key, value in data.items():
            if key not in fields:
                raise ConfigError(
                    f"{path}: unknown setting {key!r}; known: {', '.join(sorted(fields))}"
                )
            setattr(settings, key, _coerce(key, value, fields[key], str(path)))
    elif config_file:
        raise ConfigError(f"config file {path} does not exist")
    for key, target in fields.items():
        var = ENV_PREFIX + key.upper()
        if var in env and env[var] != "":
            setattr(settings, key, _coerce(key, env[var], target, f"environment variable {var}"))
    return settings


def ensure_secret_key(settings: Settings) -> str:
    """Return the web secret key, creating a random one in the instance folder on first use."""
    if not settings.secret_key:
        settings.secret_key = _instance_secret(settings.instance_path / "secret_key")
    return settings.secret_key


CORE_TOKEN_FILE = "core.token"


def ensure_core_token(settings: Settings) -> str:
    """The installation's token at the core's handler (``core_token``), else the one kept in
    ``instance/core.token``, created on first use. The core, the web site and terminals on the
    same machine read the same file, so the handler is never open to anonymous callers."""
    if not settings.core_token:
        settings.core_token = _instance_secret(settings.instance_path / CORE_TOKEN_FILE)
    return settings.core_token


def _instance_secret(path: Path) -> str:
    """A random secret kept in ``path`` (mode 0600), created atomically on first use: two
    processes starting together must agree on one value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(os.urandom(32).hex())
    for _ in range(50):  # another process may have created it and not written it yet
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
        time.sleep(0.02)
    raise ConfigError(f"{path} is empty: delete it and start again")

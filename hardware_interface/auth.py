"""Who may command the lab: bearer tokens, client certificates and the TLS context of the daemon.

The daemon refuses a call before it reaches the dispatcher, so an unauthenticated request can
never move a pump or heat the reactor. Two independent ways to prove who you are:

* a bearer token (``Authorization: Bearer <token>``) read from a file of one token per line
  (lines starting with ``#`` are comments); compared in constant time;
* a client certificate signed by the lab CA (mutual TLS), checked during the TLS handshake by
  :func:`server_ssl_context` with ``require_client_cert=True``: a client without one never gets
  an HTTP connection at all.

Each configured check is required on its own: with a token file and a required client
certificate, a caller needs both (the daemon drives heaters; defence in depth costs nothing).
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path

AuthHook = Callable[[Mapping[str, str]], bool]

# Clients older than TLS 1.2 are refused: the lab's link must not fall back to broken ciphers.
MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2


class AuthSetupError(ValueError):
    """A token file or certificate given to the daemon is missing or unusable."""


def load_tokens(path: str | Path) -> list[str]:
    """Tokens from ``path``: one per line, blank lines and ``#`` comments ignored."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthSetupError(f"token file {file}: {exc.strerror or exc}") from exc
    tokens = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not tokens:
        raise AuthSetupError(f"token file {file} holds no token")
    short = [i for i, t in enumerate(tokens, 1) if len(t) < 16]
    if short:
        raise AuthSetupError(f"token file {file}: token(s) {short} shorter than 16 characters")
    return tokens


def bearer_token_auth(tokens: list[str]) -> AuthHook:
    """An auth hook accepting a request whose Authorization header carries one of ``tokens``."""
    expected = [t.encode() for t in tokens]

    def check(headers: Mapping[str, str]) -> bool:
        header = headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return False
        given = value.strip().encode()
        # compare against every token so the time taken does not reveal which one nearly matched
        matches = [hmac.compare_digest(given, token) for token in expected]
        return any(matches)

    return check


def server_ssl_context(
    cert_file: str | Path,
    key_file: str | Path | None = None,
    client_ca_file: str | Path | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """TLS context for the daemon's listening socket.

    cert_file: the daemon's PEM certificate (with its key too when ``key_file`` is None).
    client_ca_file: the lab CA that signs client certificates; with ``require_client_cert`` the
    handshake fails for any client that does not present one signed by it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_TLS_VERSION
    try:
        context.load_cert_chain(str(cert_file), None if key_file is None else str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise AuthSetupError(f"cannot load the daemon certificate {cert_file}: {exc}") from exc
    if require_client_cert and client_ca_file is None:
        raise AuthSetupError("--require-client-cert needs --client-ca (the lab CA certificate)")
    if client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise AuthSetupError(f"cannot load the client CA {client_ca_file}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context

"""Encryption at rest of the audit log with a key kept outside the database.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) is authenticated, so a tampered
row fails to decrypt instead of reading as garbage. The key file holds one key per line, newest
first; :class:`cryptography.fernet.MultiFernet` decrypts with any of them and encrypts with the
first, which is what key rotation needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class LogKeyError(RuntimeError):
    """The log key file is missing, malformed, or does not match the stored data."""


class LogCipher:
    def __init__(self, keys: list[bytes]):
        if not keys:
            raise LogKeyError("no log encryption key given")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError as exc:
            raise LogKeyError(f"malformed log key: {exc}") from exc

    @classmethod
    def from_file(cls, path: Path, create: bool = True) -> LogCipher:
        if not path.exists():
            if not create:
                raise LogKeyError(f"log key file {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key() + b"\n")
        lines = [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip()]
        return cls(lines)

    def encrypt_json(self, value: Any) -> bytes:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def decrypt_json(self, token: bytes) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token))
        except InvalidToken as exc:
            raise LogKeyError("cannot decrypt: wrong key or tampered row") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt ``token`` under the newest key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise LogKeyError("cannot rotate: no key in the file opens this row") from exc

"""Password hashing (scrypt through Werkzeug, salted; the hash names its own parameters)."""

import functools

from werkzeug.security import check_password_hash, generate_password_hash

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    """``password_hash`` None (no such account) is False, after the same work as a real check,
    so that response timing does not reveal which accounts exist."""
    if password_hash is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(password_hash, password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password-at-all")

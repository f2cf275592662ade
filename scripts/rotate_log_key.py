"""Rotate the key that encrypts the hardware audit log (hardware_commands) at rest.

    python scripts/rotate_log_key.py [--key-file PATH] [--database-url URL] [--retire-old]

1. A new Fernet key is put first in the key file (the old ones stay after it, so nothing that
   is still encrypted under them, or written by a core that has not restarted yet, becomes
   unreadable). The file is replaced atomically with mode 0600.
2. Every row's params_enc and result_enc is re-encrypted under the new key, in batches of
   --batch rows, one transaction per batch (safe to interrupt and run again).
3. With --retire-old, once every row is under the new key, the old keys are removed from the
   file. Restart the core first: it holds the key file it read at start.

Defaults come from the MAOSIC settings (log_key_file, database_url). The key never enters the
database.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import select  # noqa: E402

from maosic.config import ConfigError, load_settings  # noqa: E402
from maosic.db.crypto import LogCipher, LogKeyError  # noqa: E402
from maosic.db.models import HardwareCommand  # noqa: E402
from maosic.db.session import DatabaseError, make_engine, session_factory  # noqa: E402

DEFAULT_BATCH = 500


def read_keys(path: Path) -> list[bytes]:
    """The keys in ``path``, newest first (raises LogKeyError when there is none)."""
    if not path.exists():
        raise LogKeyError(f"log key file {path} does not exist")
    keys = [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip()]
    if not keys:
        raise LogKeyError(f"log key file {path} holds no key")
    LogCipher(keys)  # validates every key's format
    return keys


def write_keys(path: Path, keys: list[bytes]) -> None:
    """Replace ``path`` atomically: a crash leaves either the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=".log-key-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"".join(k + b"\n" for k in keys))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reencrypt_rows(url: str, cipher: LogCipher, batch: int = DEFAULT_BATCH) -> int:
    """Re-encrypt every audit row under the cipher's newest key; returns the rows done."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    done, last_id = 0, 0
    try:
        while True:
            with sessions() as session, session.begin():
                rows = session.scalars(
                    select(HardwareCommand)
                    .where(HardwareCommand.id > last_id)
                    .order_by(HardwareCommand.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return done
                for row in rows:
                    try:
                        row.params_enc = cipher.rotate(row.params_enc)
                        if row.result_enc is not None:
                            row.result_enc = cipher.rotate(row.result_enc)
                    except LogKeyError as exc:
                        raise LogKeyError(f"hardware_commands row {row.id}: {exc}") from exc
                last_id = rows[-1].id
                done += len(rows)
    finally:
        engine.dispose()


def rotate(key_file: Path, url: str, retire_old: bool = False, batch: int = DEFAULT_BATCH) -> int:
    """Add a new key, re-encrypt all rows, optionally drop the old keys; returns rows rotated."""
    if batch < 1:
        raise ValueError(f"--batch {batch}: must be at least 1")
    old = read_keys(key_file)
    new_keys = [Fernet.generate_key(), *old]
    write_keys(key_file, new_keys)
    count = reencrypt_rows(url, LogCipher(new_keys), batch)
    if retire_old:
        write_keys(key_file, new_keys[:1])
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-file", type=Path, help="Fernet key file (default: settings)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: settings)")
    parser.add_argument("--retire-old", action="store_true", help="drop old keys afterwards")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        key_file = args.key_file or settings.resolved_log_key_file
        url = args.database_url or settings.resolved_database_url
        count = rotate(key_file, url, args.retire_old, args.batch)
    except (ConfigError, LogKeyError, DatabaseError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kept = "old keys retired" if args.retire_old else "old keys kept for rows written meanwhile"
    print(f"rotated {count} audit rows to a new key in {key_file} ({kept})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Print a request's hardware audit log, decrypted with the log key (kept outside the database).

    python scripts/decrypt_log.py REQUEST_ID [--key-file PATH] [--database-url URL]
                                  [--experiment N] [--json] [--full]

One line per command the core sent to the daemon: time, method, ok/error, duration, the
parameters and the (truncated unless --full) result. --json prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from maosic.config import ConfigError, load_settings  # noqa: E402
from maosic.db.crypto import LogCipher, LogKeyError  # noqa: E402
from maosic.db.models import Experiment, HardwareCommand  # noqa: E402
from maosic.db.session import DatabaseError, make_engine, session_factory  # noqa: E402

TRUNCATE = 160  # characters of a result shown without --full (spectra are long)


def audit_log(
    url: str, key_file: Path, request_id: int, experiment: int | None = None
) -> list[dict[str, Any]]:
    """The decrypted audit rows of ``request_id`` (optionally one experiment number), in order."""
    cipher = LogCipher.from_file(key_file, create=False)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            query = select(HardwareCommand).where(HardwareCommand.request_id == request_id)
            if experiment is not None:
                query = query.join(
                    Experiment, Experiment.id == HardwareCommand.experiment_id
                ).where(Experiment.number == experiment)
            rows = session.scalars(query.order_by(HardwareCommand.id)).all()
            out = []
            for row in rows:
                try:
                    params = cipher.decrypt_json(row.params_enc)
                    result = None if row.result_enc is None else cipher.decrypt_json(row.result_enc)
                except LogKeyError as exc:
                    raise LogKeyError(f"hardware_commands row {row.id}: {exc}") from exc
                out.append(
                    {
                        "id": row.id,
                        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
                        "method": row.method,
                        "ok": row.ok,
                        "error_code": row.error_code,
                        "duration_ms": row.duration_ms,
                        "params": params,
                        "result": result,
                    }
                )
            return out
    finally:
        engine.dispose()


def _line(entry: dict[str, Any], full: bool) -> str:
    result = json.dumps(entry["result"], separators=(",", ":"))
    if not full and len(result) > TRUNCATE:
        result = result[:TRUNCATE] + f"... ({len(result)} chars)"
    status = "ok" if entry["ok"] else f"error {entry['error_code']}"
    took = f"{entry['duration_ms']:.1f} ms" if entry["duration_ms"] is not None else "-"
    params = json.dumps(entry["params"], separators=(",", ":"))
    return f"{entry['sent_at']} {entry['method']} {params} [{status}, {took}] -> {result}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request_id", type=int, help="the request whose log to print")
    parser.add_argument("--experiment", type=int, help="only this experiment number")
    parser.add_argument("--key-file", type=Path, help="Fernet key file (default: settings)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: settings)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--full", action="store_true", help="do not truncate results")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        entries = audit_log(
            args.database_url or settings.resolved_database_url,
            args.key_file or settings.resolved_log_key_file,
            args.request_id,
            args.experiment,
        )
    except (ConfigError, LogKeyError, DatabaseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not entries:
        print(f"error: no audit log for request {args.request_id}", file=sys.stderr)
        return 1
    for entry in entries:
        print(json.dumps(entry) if args.json else _line(entry, args.full))
    return 0


if __name__ == "__main__":
    sys.exit(main())

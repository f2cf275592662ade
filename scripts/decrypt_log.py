"""Print the hardware audit log, decrypted with the log key (kept outside the database).

    python scripts/decrypt_log.py REQUEST_ID [--experiment N] [--json] [--full]
    python scripts/decrypt_log.py --manual [--actor NAME] [--epoch N] [--json] [--full]
    python scripts/decrypt_log.py --actor NAME [--epoch N] [--json] [--full]
    (each also takes --key-file PATH and --database-url URL)

A request's log: one line per command the core sent to the daemon for it. ``--manual``: the
commands operators sent by hand (the web site's hardware page), grouped into sessions, one
per operator and lease epoch, each headed by who, when and under which lease. ``--actor``:
everything one sender sent (``operator:alice``, or a core's worker name; a bare name is taken
as ``operator:NAME`` when no such worker exists). Lines show time, method, parameters, ok/error,
duration and the result (truncated unless --full); --json prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.sql import Select  # noqa: E402

from maosic.config import ConfigError, load_settings  # noqa: E402
from maosic.db.crypto import LogCipher, LogKeyError  # noqa: E402
from maosic.db.models import Experiment, HardwareCommand  # noqa: E402
from maosic.db.session import DatabaseError, make_engine, session_factory  # noqa: E402

TRUNCATE = 160  # characters of a result shown without --full (spectra are long)
OPERATOR_PREFIX = "operator:"  # actor of a manual command (cloud.lab_lease.holder_for)


def _decrypted(cipher: LogCipher, rows: Iterable[HardwareCommand]) -> list[dict[str, Any]]:
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
                "actor": row.actor,
                "lease_epoch": row.lease_epoch,
                "request_id": row.request_id,
                "method": row.method,
                "ok": row.ok,
                "error_code": row.error_code,
                "duration_ms": row.duration_ms,
                "params": params,
                "result": result,
            }
        )
    return out


def _read(url: str, key_file: Path, query: Select) -> list[dict[str, Any]]:
    cipher = LogCipher.from_file(key_file, create=False)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return _decrypted(cipher, session.scalars(query.order_by(HardwareCommand.id)).all())
    finally:
        engine.dispose()


def audit_log(
    url: str, key_file: Path, request_id: int, experiment: int | None = None
) -> list[dict[str, Any]]:
    """The decrypted audit rows of ``request_id`` (optionally one experiment number), in order."""
    query = select(HardwareCommand).where(HardwareCommand.request_id == request_id)
    if experiment is not None:
        query = query.join(Experiment, Experiment.id == HardwareCommand.experiment_id).where(
            Experiment.number == experiment
        )
    return _read(url, key_file, query)


def manual_log(
    url: str,
    key_file: Path,
    actor: str | None = None,
    epoch: int | None = None,
    manual_only: bool = True,
) -> list[dict[str, Any]]:
    """Decrypted rows sent by hand (no request, an ``operator:`` actor) or by ``actor``.

    ``actor`` without a colon matches that worker name or ``operator:<actor>``; ``epoch``
    keeps one lease's rows. ``manual_only`` False (``--actor`` alone) keeps a worker's rows too.
    """
    query = select(HardwareCommand)
    if manual_only:
        query = query.where(
            HardwareCommand.request_id.is_(None),
            HardwareCommand.actor.like(OPERATOR_PREFIX + "%"),
        )
    if actor is not None:
        names = [actor] if ":" in actor else [actor, OPERATOR_PREFIX + actor]
        query = query.where(HardwareCommand.actor.in_(names))
    if epoch is not None:
        query = query.where(HardwareCommand.lease_epoch == epoch)
    return _read(url, key_file, query)


def sessions(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive entries of one actor under one lease epoch, as one session each."""
    groups: list[list[dict[str, Any]]] = []
    for entry in entries:
        key = (entry["actor"], entry["lease_epoch"])
        if groups and (groups[-1][0]["actor"], groups[-1][0]["lease_epoch"]) == key:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return groups


def session_heading(group: list[dict[str, Any]]) -> str:
    """``== operator:alice, lease epoch 7: 4 commands, 2025-... to 2025-...``."""
    first = group[0]
    lease = (
        f"lease epoch {first['lease_epoch']}"
        if first["lease_epoch"] is not None
        else "no lease (the lab was free)"
    )
    n = len(group)
    when = first["sent_at"] if n == 1 else f"{first['sent_at']} to {group[-1]['sent_at']}"
    who = first["actor"] or "(unknown sender)"
    return f"== {who}, {lease}: {n} command{'s' * (n != 1)}, {when}"


def _line(entry: dict[str, Any], full: bool) -> str:
    result = json.dumps(entry["result"], separators=(",", ":"))
    if not full and len(result) > TRUNCATE:
        result = result[:TRUNCATE] + f"... ({len(result)} chars)"
    status = "ok" if entry["ok"] else f"error {entry['error_code']}"
    took = f"{entry['duration_ms']:.1f} ms" if entry["duration_ms"] is not None else "-"
    params = json.dumps(entry["params"], separators=(",", ":"))
    return f"{entry['sent_at']} {entry['method']} {params} [{status}, {took}] -> {result}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request_id", type=int, nargs="?", help="the request whose log to print")
    parser.add_argument("--experiment", type=int, help="only this experiment number")
    parser.add_argument("--manual", action="store_true", help="operators' manual commands")
    parser.add_argument("--actor", help="only what this sender sent (operator:NAME or a worker)")
    parser.add_argument("--epoch", type=int, help="only commands under this lease epoch")
    parser.add_argument("--key-file", type=Path, help="Fernet key file (default: settings)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: settings)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--full", action="store_true", help="do not truncate results")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    by_sender = args.manual or args.actor is not None
    if (args.request_id is not None) == by_sender:
        parser.error("give a REQUEST_ID, or --manual / --actor NAME (not both)")
    if args.experiment is not None and by_sender:
        parser.error("--experiment belongs to a request's log")
    if args.epoch is not None and not by_sender:
        parser.error("--epoch goes with --manual or --actor")
    try:
        settings = load_settings()
        url = args.database_url or settings.resolved_database_url
        key_file = args.key_file or settings.resolved_log_key_file
        if by_sender:
            entries = manual_log(url, key_file, args.actor, args.epoch, manual_only=args.manual)
        else:
            entries = audit_log(url, key_file, args.request_id, args.experiment)
    except (ConfigError, LogKeyError, DatabaseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not entries:
        what = f"request {args.request_id}" if not by_sender else _what(args)
        print(f"error: no audit log for {what}", file=sys.stderr)
        return 1
    if args.json:
        for entry in entries:
            print(json.dumps(entry))
    elif by_sender:
        for group in sessions(entries):
            print(session_heading(group))
            for entry in group:
                print("  " + _line(entry, args.full))
    else:
        for entry in entries:
            print(_line(entry, args.full))
    return 0


def _what(args: argparse.Namespace) -> str:
    parts = ["manual commands" if args.manual else "commands"]
    if args.actor is not None:
        parts.append(f"of {args.actor}")
    if args.epoch is not None:
        parts.append(f"under lease epoch {args.epoch}")
    return " ".join(parts)


def _main_piped() -> int:
    """``main`` for the command line: a reader that stops early (``| head``) ends the output
    quietly, as with any Unix tool, instead of a BrokenPipeError traceback."""
    try:
        status = main()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(_main_piped())

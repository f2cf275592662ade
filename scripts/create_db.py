"""Create or upgrade the MAOSIC database, add the example reactions, make the first admin.

    python scripts/create_db.py [--seed] [--create-admin NAME] [--demo-users] [--database-url URL]

``--seed`` adds the example reactions (no accounts). ``--create-admin NAME`` adds an admin
account, asking for its password twice (or reading one line from standard input with
``--password-stdin``). ``--demo-users`` adds the demo accounts with their public passwords, and
only to a database that has no account yet: for a demo, never for a lab. Running it twice
changes nothing the second time.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maosic.config import ConfigError, load_settings  # noqa: E402
from maosic.db.schema import create_or_upgrade  # noqa: E402
from maosic.db.seed import create_admin, seed_demo_users, seed_examples  # noqa: E402
from maosic.db.session import DatabaseError, make_engine  # noqa: E402


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password for the new admin: ")
    if getpass.getpass("the same again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", action="store_true", help="add the example reactions")
    parser.add_argument("--create-admin", metavar="NAME", help="add an admin account NAME")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the admin's password from stdin"
    )
    parser.add_argument(
        "--demo-users",
        action="store_true",
        help="add the demo accounts (public passwords) to a database without accounts",
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: settings)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        url = args.database_url or settings.resolved_database_url
        engine = make_engine(url)
        print(
            f"{create_or_upgrade(engine, url)}: {engine.url.render_as_string(hide_password=True)}"
        )
        engine.dispose()
        if args.seed:
            added = seed_examples(url)
            print("seeded: " + "; ".join(added) if added else "examples already present")
        if args.demo_users:
            added = seed_demo_users(url)
            print("; ".join(added) if added else "accounts exist already: no demo accounts added")
        if args.create_admin:
            create_admin(url, args.create_admin, _password(args.password_stdin))
            print(f"admin account {args.create_admin!r} created")
    except (DatabaseError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: --create-admin: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

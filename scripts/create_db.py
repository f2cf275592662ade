"""Create or upgrade the MAOSIC database; with --seed, add a demo user and the paper's reaction.

    python scripts/create_db.py [--seed] [--database-url URL]

Running it twice changes nothing the second time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maosic.config import ConfigError, load_settings  # noqa: E402
from maosic.db.schema import create_or_upgrade  # noqa: E402
from maosic.db.seed import seed  # noqa: E402
from maosic.db.session import DatabaseError, make_engine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", action="store_true", help="add demo users and example reactions")
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
            added = seed(url)
            print("seeded: " + "; ".join(added) if added else "seed data already present")
    except (DatabaseError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m maosic COMMAND``: the core's command line.

compile   formula or configuration -> instruction codes / JSON-RPC plan
campaign  run one campaign headless (``--sim`` starts a simulated lab for it)
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _compile(argv: list[str]) -> int:
    from maosic.language.cli import main

    return main(argv)


def _campaign(argv: list[str]) -> int:
    from maosic.headless import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {"compile": _compile, "campaign": _campaign}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m user_control [connection options] COMMAND ...``: manual control and requests.

Manual control talks to the hardware daemon (``--hardware-url``), requests to the core
(``--core-url``); see :mod:`user_control.settings` for the other connection settings and
:mod:`user_control.errors` for the exit statuses (0 done, 1 refused, 2 usage, 3 unreachable).
``shell`` (or no command at all on a terminal) starts the interactive shell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from user_control.context import Context
from user_control.errors import EXIT_INTERRUPTED, EXIT_USAGE, CliError
from user_control.parser import HelpShown, Parser, add_commands
from user_control.settings import load_client_settings

EPILOG = (
    "exit status: 0 done, 1 refused by the daemon or core (or a watched request failed), "
    "2 bad usage, 3 daemon or core unreachable. Settings: flags > MAOSIC_* environment > "
    "config file (--config, $MAOSIC_CLIENT_CONFIG or ~/.config/maosic/client.toml)."
)

# Flags that set one settings field each: option dest -> field of ClientSettings.
FLAG_FIELDS: dict[str, str] = {
    "hardware_url": "hardware_url",
    "core_url": "core_url",
    "hardware_token": "hardware_token",
    "core_token": "core_token",
    "ca_file": "ca_file",
    "client_cert": "client_cert",
    "user": "user",
    "timeout": "timeout_s",
    "retries": "retries",
    "history_file": "history_file",
    "lease_file": "lease_file",
}


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m user_control",
        description="Manual control of the MAOSIC lab and synthesis requests from a terminal.",
        epilog=EPILOG,
    )
    conn = parser.add_argument_group("connection")
    conn.add_argument(
        "--config", dest="settings_file", metavar="FILE", help="client settings file (TOML)"
    )
    conn.add_argument("--hardware-url", metavar="URL", help="hardware daemon, e.g. :8888/")
    conn.add_argument("--core-url", metavar="URL", help="core request handler, e.g. :9999/")
    conn.add_argument("--token", help="bearer token for both daemon and core")
    conn.add_argument("--hardware-token", metavar="TOKEN", help="bearer token for the daemon")
    conn.add_argument("--core-token", metavar="TOKEN", help="bearer token for the core")
    conn.add_argument("--ca-file", metavar="PEM", help="CA certificate(s) to trust (TLS)")
    conn.add_argument("--client-cert", metavar="PEM", help="client certificate + key (mTLS)")
    conn.add_argument(
        "--user", help="your account at the core (password: MAOSIC_PASSWORD, or asked)"
    )
    conn.add_argument("--timeout", metavar="S", help="longest wait for one answer, s (600)")
    conn.add_argument("--retries", metavar="N", help="extra connection attempts (2)")
    conn.add_argument("--history-file", metavar="FILE", help="shell history (~/.maosic_history)")
    conn.add_argument(
        "--lease-file", metavar="FILE", help="leases held between commands (~/.config/maosic/)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    # The shell is a CLI-only command: inside the shell it would nest.
    add_commands(parser, extra={"shell": "interactive shell with completion and history"})
    return parser


def _flags(args: argparse.Namespace) -> dict[str, object]:
    given = vars(args)
    flags: dict[str, object] = {field: given[dest] for dest, field in FLAG_FIELDS.items()}
    if args.token is not None:
        # --token covers both endpoints unless a specific token was given too.
        flags["hardware_token"] = flags["hardware_token"] or args.token
        flags["core_token"] = flags["core_token"] or args.token
    return flags


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    """Run one command (or the shell) and return its exit status; never raises for bad input."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv == ["--json"]:
        if not sys.stdin.isatty():
            # A script that forgot the command must not look successful.
            build_parser().print_help(err)
            return EXIT_USAGE
        argv.append("shell")
    try:
        args = build_parser().parse_args(argv)
        settings = load_client_settings(_flags(args), environ, args.settings_file)
    except HelpShown as shown:
        return shown.status
    except CliError as exc:
        err.write(f"error: {exc.message}\n")
        return EXIT_USAGE
    ctx = Context(settings=settings, out=out, err=err, as_json=args.json)
    try:
        if args.command == "shell":
            from user_control.shell import run_shell

            return run_shell(ctx)
        return args.handler(ctx, args)
    except CliError as exc:
        err.write(f"error: {exc.message}\n")
        return exc.exit_status
    except KeyboardInterrupt:
        err.write("\ninterrupted (the lab may still be carrying out the last command)\n")
        return EXIT_INTERRUPTED
    finally:
        ctx.close()

"""Exit statuses and the errors that map onto them.

A script driving the lab relies on these numbers, so they never change meaning:

* 0 ``EXIT_OK``: the command was carried out (a watched request finished ``done``);
* 1 ``EXIT_REFUSED``: the daemon or the core answered with an error (a safety limit, a busy
  module, an unknown request), or a watched request ended ``failed``/``cancelled``;
* 2 ``EXIT_USAGE``: bad arguments, a bad configuration file or settings; nothing was sent;
* 3 ``EXIT_UNREACHABLE``: no connection to the daemon or the core, or it stopped answering;
* 130 ``EXIT_INTERRUPTED``: Ctrl-C (the shell convention 128 + SIGINT).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An error the CLI reports as one line on stderr and turns into an exit status."""

    exit_status = EXIT_REFUSED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # One line: daemons may send multi-line messages, a terminal user wants one clear line.
        self.message = " ".join(message.split())


class UsageError(CliError):
    """The command line, a settings source or an input file is wrong; nothing was sent."""

    exit_status = EXIT_USAGE


class Refused(CliError):
    """The daemon or the core answered with a JSON-RPC error (``code``, ``data`` as sent)."""

    exit_status = EXIT_REFUSED

    def __init__(self, message: str, code: int | None = None, data: object = None) -> None:
        super().__init__(message)
        self.code = code  # lets a caller react to one refusal (e.g. a lease taken over)
        self.data = data


class Unreachable(CliError):
    """The daemon or the core could not be reached, or did not answer."""

    exit_status = EXIT_UNREACHABLE

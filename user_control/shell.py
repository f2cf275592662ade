"""The interactive shell: the CLI's commands with tab completion, history and help.

Built on the stdlib :mod:`cmd` loop for its readline integration, but dispatch, completion and
help go through the explicit ``COMMANDS`` table of :mod:`user_control.parser` rather than
``cmd``'s ``getattr(self, "do_" + word)`` lookup of whatever the user typed. Each line is
parsed by the same argparse grammar as the one-shot CLI, so both accept the same commands.
History persists in ``~/.maosic_history`` (setting ``history_file``).
"""

from __future__ import annotations

import cmd
import glob
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from user_control import manual
from user_control.context import Context
from user_control.errors import EXIT_INTERRUPTED, EXIT_OK, CliError
from user_control.parser import COMMANDS, HelpShown, command_parser

try:  # readline is absent on some platforms (Windows); the shell then works without it.
    import readline
except ImportError:  # pragma: no cover - Debian's Python has it
    readline = None  # type: ignore[assignment]

HISTORY_LENGTH = 1000
SHELL_WORDS: dict[str, str] = {
    "help": "help [COMMAND]: list the commands, or one command's arguments",
    "exit": "leave the shell (also quit, or Ctrl-D)",
    "quit": "leave the shell",
}
# Used for completion when the daemon cannot be asked what modules it has.
FALLBACK_MODULES: dict[str, list[str]] = {
    "pump": ["SP1", "SP2", "SP3", "SP4"],
    "valve": ["V1", "V2"],
}

Completer = Callable[["MaosicShell", list[str]], list[str]]


def _complete_pump(shell: MaosicShell, words: list[str]) -> list[str]:
    if len(words) == 1:
        return shell.module_ids("pump")
    if len(words) == 2:
        return ["fill", "infuse", "withdraw", "stop", "status"]
    action = words[2]
    if action == "fill" and len(words) == 3:
        return shell.reagents()
    if action == "fill":
        return ["--rate"]
    if action in ("infuse", "withdraw"):
        return ["--volume", "--rate", "--no-wait"]
    return []


def _complete_heater(shell: MaosicShell, words: list[str]) -> list[str]:
    if len(words) == 1:
        return ["set", "off", "status"]
    if words[1] == "set" and len(words) > 2:
        return ["--ramp", "--no-wait", "--timeout"]
    return []


def _complete_robot(shell: MaosicShell, words: list[str]) -> list[str]:
    if len(words) == 1:
        return ["move", "status"]
    return shell.robot_positions() if words[1] == "move" else []


def _complete_measure(shell: MaosicShell, words: list[str]) -> list[str]:
    if len(words) == 1:
        return list(manual.MEASUREMENTS)
    return ["--integration", "--excitation", "--csv"]


def _complete_valve(shell: MaosicShell, words: list[str]) -> list[str]:
    if len(words) == 1:
        return shell.module_ids("valve")
    return ["open", "close"] if len(words) == 2 else []


def _complete_status(shell: MaosicShell, words: list[str]) -> list[str]:
    return ["--watch", "--interval", "--count"]


def _complete_submit(shell: MaosicShell, words: list[str]) -> list[str]:
    options = ["--formula", "--space", "--target", "--budget", "--optimizer", "--seed", "--name"]
    return options + ["--watch", "--interval", *shell.files("*.json")]


def _complete_lease(shell: MaosicShell, words: list[str]) -> list[str]:
    if len(words) == 1:
        return ["status", "take", "release"]
    return ["--take", "--ttl", "--holder"] if words[1] == "take" else []


def _complete_help(shell: MaosicShell, words: list[str]) -> list[str]:
    return list(COMMANDS) if len(words) == 1 else []


COMPLETERS: dict[str, Completer] = {
    "pump": _complete_pump,
    "heater": _complete_heater,
    "robot": _complete_robot,
    "measure": _complete_measure,
    "valve": _complete_valve,
    "status": _complete_status,
    "submit": _complete_submit,
    "lease": _complete_lease,
    "help": _complete_help,
}


class MaosicShell(cmd.Cmd):
    prompt = "maosic> "
    intro = (
        "MAOSIC lab shell. `help` lists the commands, `help COMMAND` explains one; "
        "Tab completes; `stop` is the emergency stop; `exit` or Ctrl-D leaves."
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(stdout=ctx.out)
        self.ctx = ctx
        self.parser, self.parsers = command_parser()
        self.last_status = EXIT_OK
        self.finished = False
        self._matches: list[str] = []
        self._lab_failed = False

    # -- what the lab has, for completion ------------------------------------------------------
    def _lab(self) -> dict[str, Any] | None:
        # One failed attempt is enough: Tab must not hang on an unreachable daemon every time.
        if self._lab_failed:
            return None
        try:
            return self.ctx.lab()
        except CliError:
            self._lab_failed = True
            return None

    def module_ids(self, kind: str) -> list[str]:
        lab = self._lab()
        if lab is None:
            return FALLBACK_MODULES.get(kind, [])
        return sorted(m for m, info in lab.get("modules", {}).items() if info.get("kind") == kind)

    def robot_positions(self) -> list[str]:
        lab = self._lab() or {}
        for info in lab.get("modules", {}).values():
            if info.get("kind") == "robot" and info.get("positions"):
                return list(info["positions"])
        return list(manual.ROBOT_POSITIONS)

    def reagents(self) -> list[str]:
        lab = self._lab()
        names = list((lab or {}).get("reagents", {}))
        return names + [f"R{i}" for i in range(1, len(names) + 1)]

    @staticmethod
    def files(pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    # -- completion --------------------------------------------------------------------------------
    def candidates(self, line: str, text: str) -> list[str]:
        """Completions of the word ``text`` that ends ``line`` (the line up to the cursor)."""
        words = line[: len(line) - len(text)].split()
        if not words:
            pool = [*COMMANDS, *SHELL_WORDS]
        else:
            completer = COMPLETERS.get(words[0])
            pool = completer(self, words) if completer else []
            if text.startswith("-") and words[0] in self.parsers:
                pool = [*pool, "--help"]
        if text and not text.startswith("-") and words and words[-1] == "--csv":
            pool = self.files(text + "*")
        # Python's readline binding sets no append character, so the space that ends a completed
        # word is added here (readline still inserts the common prefix of several candidates).
        return [
            c if c.endswith("/") else c + " " for c in dict.fromkeys(pool) if c.startswith(text)
        ]

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            line = readline.get_line_buffer()[: readline.get_endidx()] if readline else text
            try:
                self._matches = self.candidates(line, text)
            except Exception:  # noqa: BLE001 - a completion bug must never kill the shell
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None

    # -- dispatch ----------------------------------------------------------------------------------
    def emptyline(self) -> bool:
        return False  # cmd's default repeats the last command: dangerous with pumps

    def onecmd(self, line: str) -> bool:
        line = line.strip()
        if not line or line.startswith("#"):
            return False
        if line == "EOF":
            self.ctx.out.write("\n")
            return True
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self._error(f"cannot read the line: {exc}")
            return False
        name = words[0]
        if name in ("exit", "quit"):
            return True
        if name == "help" or name == "?":
            self.show_help(words[1:])
            return False
        if name not in COMMANDS:
            self._error(f"unknown command {name!r}; `help` lists the commands")
            return False
        try:
            args = self.parser.parse_args(words)
            self.last_status = args.handler(self.ctx, args)
        except HelpShown:
            self.last_status = EXIT_OK
        except CliError as exc:
            self._error(exc.message, exc.exit_status)
        except KeyboardInterrupt:
            self._error(
                "interrupted (the lab may still be carrying out the command)", EXIT_INTERRUPTED
            )
        return False

    def _error(self, message: str, status: int = 2) -> None:
        self.last_status = status
        self.ctx.err.write(f"error: {message}\n")
        self.ctx.err.flush()

    def show_help(self, words: list[str]) -> None:
        out = self.ctx.out
        if words and words[0] in self.parsers:
            out.write(self.parsers[words[0]].format_help())
        elif words and words[0] in SHELL_WORDS:
            out.write(SHELL_WORDS[words[0]] + "\n")
        elif words:
            self._error(f"no command {words[0]!r}; `help` lists the commands")
            return
        else:
            out.write("commands (help COMMAND for details):\n")
            for name, (text, _, _) in COMMANDS.items():
                out.write(f"  {name:<10} {text}\n")
            for name, text in SHELL_WORDS.items():
                out.write(f"  {name:<10} {text.split(': ', 1)[-1]}\n")
        out.flush()


def _history_path(ctx: Context) -> Path:
    return Path(os.path.expanduser(ctx.settings.history_file))


def run_shell(ctx: Context) -> int:
    """Run the shell until ``exit``/Ctrl-D; returns the status of the last command."""
    shell = MaosicShell(ctx)
    history = _history_path(ctx)
    if readline is not None:
        # Options and reagent names hold '-', which readline would otherwise split words at.
        readline.set_completer_delims(" \t\n")
        readline.set_history_length(HISTORY_LENGTH)
        if history.exists():
            try:
                readline.read_history_file(str(history))
            except OSError as exc:
                ctx.err.write(f"warning: cannot read the history {history}: {exc.strerror}\n")
    try:
        while True:
            try:
                shell.cmdloop()
                break
            except KeyboardInterrupt:
                # Ctrl-C at the prompt drops the line, as in bash; it does not leave the shell.
                ctx.out.write("^C\n")
                shell.intro = ""
    finally:
        if readline is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(str(history))
            except OSError as exc:
                ctx.err.write(f"warning: cannot save the history {history}: {exc.strerror}\n")
    return shell.last_status

"""``python -m maosic compile``: compile a formula or a reaction configuration.

    python -m maosic compile "FORMULA"            instruction codes, one per line
    python -m maosic compile "FORMULA" --json     the JSON-RPC plan (needs --bind for $variables)
    python -m maosic compile --file F.formula     the formula read from a file (its "# vary"
                                                  and "# fix" lines give defaults to --json)
    python -m maosic compile --config FILE.json   validate + compile a configuration
                                                  (--json: plan at the configured defaults)
    --bind NAME=VALUE (repeatable) binds $NAME for the plan.

Exit status 0 on success; 2 on bad input, with one message on stderr naming line and column.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from maosic.language.compiler import Program, compile_config, compile_formula
from maosic.language.config import formula_config, load_config
from maosic.language.errors import LanguageError
from maosic.language.header import formula_space

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m maosic compile",
        description="Compile a MAOSIC formula or reaction configuration into instruction codes.",
    )
    p.add_argument("formula", nargs="?", help='the formula, e.g. "R1·SP1[0.1, 0, 0.05]"')
    p.add_argument("--file", help="read the formula from this file")
    p.add_argument("--config", help="a reaction configuration (JSON file) to validate+compile")
    p.add_argument("--json", action="store_true", help="print the JSON-RPC plan instead")
    p.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of $NAME for the plan (repeatable)",
    )
    return p


def _bindings(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lstrip("$")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise _UsageError(f"--bind expects NAME=NUMBER, got {item!r}") from None
    return out


def format_instruction(inst: dict[str, Any]) -> str:
    """``HEAT module=H1 setpoint_C=$T ...``: one instruction as a readable line."""
    parts = [inst["code"]]
    for key, value in inst.items():
        if key == "code":
            continue
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        parts.append(f"{key}={text}")
    return " ".join(parts)


def _run(args: argparse.Namespace, out: TextIO) -> None:
    given = [x for x in (args.formula, args.file, args.config) if x is not None]
    if len(given) != 1:
        raise _UsageError("give exactly one of FORMULA, --file or --config")
    bindings = _bindings(args.bind)
    program: Program
    if args.config is not None:
        config = load_config(_read_path(args.config), where=args.config)
        program = compile_config(config)
        bindings = {**config.defaults(), **bindings}
    else:
        formula = args.formula if args.formula is not None else _read_text(args.file)
        where = args.file or "formula"
        space = formula_space(formula, where=where)
        if space:  # the text's own vary/fix lines: its variables, bounds and constants
            config = load_config(formula_config(formula, space), where=where)
            program = compile_formula(formula, config, where=where)
            bindings = {**config.defaults(), **bindings}
        else:
            program = compile_formula(formula, where=where)
    if args.json:
        out.write(json.dumps(program.plan(bindings), indent=2, ensure_ascii=False) + "\n")
        return
    for inst in program.instructions:
        out.write(format_instruction(inst) + "\n")


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise _UsageError(f"cannot read {path!r}: {exc}") from None


def _read_path(path: str) -> str:
    # load_config would take the path too; reading here keeps "file not found" a usage error.
    return _read_text(path)


def main(
    argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Entry point for ``python -m maosic compile`` (``argv`` excludes "compile")."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = _build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        _run(args, out)
    except LanguageError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except _UsageError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""The command grammar, shared by the one-shot CLI and the interactive shell.

``COMMANDS`` is the explicit dispatch table: command name -> (one-line help, function that adds
its arguments, handler). The CLI parser puts the connection options in front of it; the shell
parses each line with :func:`command_parser` so both accept exactly the same commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from user_control import crate_cli, lease_cli, manual, plans_cli, requests_cli
from user_control.context import Context
from user_control.errors import UsageError

Handler = Callable[[Context, argparse.Namespace], int]


class HelpShown(Exception):
    """``-h``/``--help`` printed its text; the caller stops with this status (0)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of calling ``sys.exit``, so the shell can go on."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise UsageError(message.strip())
        raise HelpShown(status)


def positive(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def number(text: str) -> float:
    """argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def count(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# -- one builder per command ----------------------------------------------------------------------
def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=positive, default=2.0, help="refresh period, s (2)")
    p.add_argument("--count", type=count, default=None, help="stop after N refreshes")


def _nothing(p: argparse.ArgumentParser) -> None:
    del p


def _pump(p: argparse.ArgumentParser) -> None:
    p.add_argument("pump", metavar="PUMP", help="pump id, e.g. SP1")
    actions = p.add_subparsers(
        dest="action", metavar="ACTION", required=True, prog=f"{p.prog} PUMP"
    )
    fill = actions.add_parser("fill", help="draw REAGENT from its stock bottle into the syringe")
    fill.add_argument("reagent", help="reagent name (Cs-oleate) or R<i>, the lab's i-th reagent")
    fill.add_argument("volume", type=positive, help="volume, mL")
    fill.add_argument("--rate", type=positive, default=None, help="fill rate, mL/min")
    for name, text in (("infuse", "push into the reactor"), ("withdraw", "pull back")):
        move = actions.add_parser(name, help=text)
        move.add_argument("--volume", type=positive, required=True, metavar="ML", help="mL")
        move.add_argument("--rate", type=positive, required=True, metavar="ML_MIN", help="mL/min")
        move.add_argument("--no-wait", action="store_true", help="return once started")
    actions.add_parser("stop", help="stop this pump now")
    actions.add_parser("status", help="syringe volume, reagent, state")


def _parallel(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "moves", nargs="+", metavar="PUMP:VOLUME:RATE", help="e.g. SP1:0.2:0.05 (mL, mL/min)"
    )
    p.add_argument("--no-wait", action="store_true", help="return once started")


def _heater(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    heat = actions.add_parser("set", help="set the setpoint and (by default) wait until stable")
    heat.add_argument("setpoint", type=number, help="setpoint, °C")
    heat.add_argument("--ramp", type=positive, default=10.0, help="ramp rate, °C/min (10)")
    heat.add_argument("--no-wait", action="store_true", help="do not wait for stability")
    heat.add_argument(
        "--timeout", type=positive, default=1800.0, help="longest wait for stability, s (1800)"
    )
    actions.add_parser("off", help="switch the heater off")
    actions.add_parser("status", help="temperature, setpoint, stability, power")


def _robot(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    move = actions.add_parser("move", help="move through one or more positions in order")
    move.add_argument(
        "positions", nargs="+", metavar="POSITION", help=", ".join(manual.ROBOT_POSITIONS)
    )
    actions.add_parser("status", help="where the arm is")


def _measure(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=tuple(manual.MEASUREMENTS), help="abs, cd or pl")
    p.add_argument("--integration", type=positive, default=100.0, help="integration time, ms")
    p.add_argument("--excitation", type=positive, default=300.0, help="PL excitation, nm")
    p.add_argument("--csv", metavar="FILE", help="save the spectrum (- for standard output)")


def _valve(p: argparse.ArgumentParser) -> None:
    p.add_argument("valve", help="valve id, e.g. V1")
    p.add_argument("state", choices=("open", "close"))


def _reagent(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("stock", "refill"))
    p.add_argument("name", nargs="?", help="reagent, e.g. Cs-oleate (refill)")
    p.add_argument("volume", nargs="?", type=positive, help="volume poured in, mL (refill)")


def _wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("seconds", type=positive, help="time on the lab's clock, s")


def _lease(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("status", help="who holds the lab, its epoch and time left (default)")
    take = actions.add_parser("take", help="take the lab; later commands carry the lease")
    take.add_argument("--take", action="store_true", help="pre-empt the holder (a campaign)")
    take.add_argument(
        "--ttl",
        type=positive,
        default=lease_cli.DEFAULT_TTL_S,
        help="hold lasts this long after each command, s (600)",
    )
    take.add_argument("--holder", help="holder name (operator:USER)")
    actions.add_parser("release", help="give the lab back")


class _SubmitHelp(argparse.HelpFormatter):
    """Names the optimizers and the default one from the optimizer registry, so the help cannot
    drift from what the core runs. Looked up only when the help is shown: importing the
    optimizers (numpy, scipy) takes most of a second, which every command would otherwise pay
    at start."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if action.dest != "optimizer" or text is None:
            return text
        from maosic.optimize.registry import DEFAULT_OPTIMIZER, OPTIMIZERS

        others = [name for name in OPTIMIZERS if name != DEFAULT_OPTIMIZER]
        names = ", ".join([DEFAULT_OPTIMIZER, *others[:-1]]) + f" or {others[-1]}"
        return text.format(names=names, default=DEFAULT_OPTIMIZER)


def _submit(p: argparse.ArgumentParser) -> None:
    p.formatter_class = _SubmitHelp
    p.add_argument(
        "config_file", nargs="?", metavar="CONFIG.json", help="reaction configuration (JSON)"
    )
    p.add_argument("--formula", help="instruction formula instead of a configuration")
    p.add_argument(
        "--space",
        action="append",
        metavar="NAME=LOW:HIGH[:STEP]",
        help="search space of a formula variable (repeat per variable)",
    )
    p.add_argument("--target", help='metric name, or a JSON target {"metric": ...}')
    p.add_argument("--budget", type=count, help="most experiments to run")
    p.add_argument(
        "--optimizer",
        help="{names} (default: the configuration's, else {default}); another than the "
        "configuration's runs without its options",
    )
    p.add_argument("--seed", type=int, default=0, help="optimizer seed (0)")
    p.add_argument("--name", help="name of a formula request")
    p.add_argument(
        "--points", metavar="FILE.csv", help="run these points, no optimizer (header: names)"
    )
    p.add_argument(
        "--design",
        choices=("full_factorial", "one_factor_at_a_time"),
        help="run a generated design instead of an optimizer",
    )
    p.add_argument("--levels", type=count, default=3, help="levels per variable of --design (3)")
    p.add_argument("--watch", action="store_true", help="follow it with a progress bar")
    p.add_argument("--interval", type=positive, default=1.0, help="polling period, s (1)")


def _request_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="request id")


def _show(p: argparse.ArgumentParser) -> None:
    _request_id(p)
    p.add_argument(
        "--explain",
        action="store_true",
        help="also which inputs drove the result (SHAP values of a surrogate, held-out R²)",
    )


def _watch(p: argparse.ArgumentParser) -> None:
    _request_id(p)
    p.add_argument("--interval", type=positive, default=1.0, help="polling period, s (1)")


def _cancel(p: argparse.ArgumentParser) -> None:
    _request_id(p)
    p.add_argument("--wait", action="store_true", help="until a running request has stopped")
    p.add_argument("--interval", type=positive, default=0.5, help="polling period, s (0.5)")


def _requests(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mine", action="store_true", help="only the configured user's")
    p.add_argument("--limit", type=count, default=20, help="how many, newest first (20)")


def _export(p: argparse.ArgumentParser) -> None:
    _request_id(p)
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--csv", metavar="FILE", help="output file (- for stdout)")
    out.add_argument("--ro-crate", metavar="DIR", help="the whole run as an RO-Crate in DIR")


def _repeat(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="request id")
    p.add_argument("--n", type=count, default=3, help="replicates to run (3)")
    p.add_argument("--number", type=count, help="experiment number (default: the best)")
    p.add_argument(
        "--back-to-back",
        action="store_true",
        help="no random condition between replicates (default: one between each two)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the conditions between (0)")
    p.add_argument("--watch", action="store_true", help="follow it with a progress bar")
    p.add_argument("--interval", type=positive, default=1.0, help="polling period, s (1)")


def _propose(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, help="request id")
    p.add_argument("values", nargs="*", metavar="NAME=VALUE", help="one point, e.g. T=150 C=0.8")
    p.add_argument("--csv", metavar="FILE", help="several points: a header of names, one row each")


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "status": ("module states and readings of the lab", _status, manual.cmd_status),
    "describe": ("modules, limits and reagents of the lab", _nothing, manual.cmd_describe),
    "pump": ("fill, infuse, withdraw, stop a syringe pump", _pump, manual.cmd_pump),
    "parallel": ("infuse with several pumps at once", _parallel, manual.cmd_parallel),
    "heater": ("set the heater, switch it off, read it", _heater, manual.cmd_heater),
    "robot": ("move the robot arm", _robot, manual.cmd_robot),
    "measure": ("take an absorbance, CD or PL spectrum", _measure, manual.cmd_measure),
    "valve": ("open or close a valve", _valve, manual.cmd_valve),
    "reagent": ("stock bottles: show them, or book a refill", _reagent, manual.cmd_reagent),
    "wait": ("wait on the lab's clock", _wait, manual.cmd_wait),
    "lease": ("see, take or give back the lab's lease", _lease, lease_cli.cmd_lease),
    "stop": ("EMERGENCY STOP: all pumps stop, heater off", _nothing, manual.cmd_stop),
    "reset": ("clear latched faults after a stop", _nothing, manual.cmd_reset),
    "submit": ("submit a synthesis request to the core", _submit, requests_cli.cmd_submit),
    "watch": ("follow a request with a progress bar", _watch, requests_cli.cmd_watch),
    "queue": ("active requests in FIFO order", _nothing, requests_cli.cmd_queue),
    "requests": ("recent requests", _requests, requests_cli.cmd_requests),
    "show": ("a request, its experiments and the best so far", _show, requests_cli.cmd_show),
    "cancel": ("cancel a request", _cancel, requests_cli.cmd_cancel),
    "export": ("experiments of a request as CSV", _export, requests_cli.cmd_export),
    "import-crate": ("an RO-Crate as a done request", crate_cli.import_args, crate_cli.cmd_import),
    "repeat": ("run an experiment (or the best) again, n times", _repeat, plans_cli.cmd_repeat),
    "propose": ("your next points for an active request", _propose, plans_cli.cmd_propose),
    "suggest": ("the point a request runs next", _request_id, plans_cli.cmd_suggest),
    "replicates": ("mean, deviation, CV of replicates", _request_id, plans_cli.cmd_replicates),
}


def add_commands(
    parser: argparse.ArgumentParser, extra: dict[str, str] | None = None
) -> dict[str, argparse.ArgumentParser]:
    """Add every command of ``COMMANDS`` as a sub-command, and ``extra`` {name: help} ones
    without a handler (``handler`` None); returns the sub-parsers by name."""
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name, (text, build, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        build(p)
        p.set_defaults(handler=handler)
        parsers[name] = p
    for name, text in (extra or {}).items():
        parsers[name] = sub.add_parser(name, help=text, description=text)
        parsers[name].set_defaults(handler=None)
    return parsers


def command_parser() -> tuple[Parser, dict[str, argparse.ArgumentParser]]:
    """A parser of commands only (no connection options), for the shell."""
    parser = Parser(prog="maosic", add_help=False)
    return parser, add_commands(parser)

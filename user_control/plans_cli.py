"""Experiments people choose, from the terminal (issue 21; the core side is maosic/plans.py).

``repeat ID [--n N] [--number K] [--back-to-back]``  run an experiment (default: the request's
    best) again N times, a random condition between each two, as a new request;
``propose ID NAME=VALUE ... [--csv FILE]``  a person's next points for an active request;
``suggest ID``  what the request runs next if nobody proposes anything;
``replicates ID``  the reproducibility of the replicate groups touching a request.

Their arguments are built in user_control/parser.py, with every other command's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from user_control.context import Context
from user_control.errors import EXIT_OK, UsageError


def read_points_csv(path: str) -> list[dict[str, float]]:
    """Points from a CSV file (a header naming the variables); the core checks them against
    the request's search space."""
    # Imported here: maosic.plans brings numpy and the optimizers, which every other command
    # (a `pump fill`) would otherwise wait for at start.
    from maosic.plans import MAX_CSV_BYTES, PlanError, rows_from_csv

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"points file {path!r} does not exist")
    if file.stat().st_size > MAX_CSV_BYTES:
        raise UsageError(f"points file {path!r}: at most {MAX_CSV_BYTES // 1000} kB")
    try:
        return rows_from_csv(file.read_text(encoding="utf-8"))
    except (PlanError, UnicodeDecodeError) as exc:
        raise UsageError(f"points file {path!r}: {exc}") from None


def parse_point(values: list[str]) -> dict[str, float]:
    point: dict[str, float] = {}
    for item in values:
        name, sep, text = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            point[name.strip()] = float(text)
        except ValueError:
            raise UsageError(f"{item!r}: write NAME=VALUE, e.g. T=150") from None
    return point


def _fmt(point: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in point.items()) if point else "-"


def cmd_repeat(ctx: Context, args: argparse.Namespace) -> int:
    from user_control.requests_cli import _watch  # the same progress bar as submit --watch

    reply = ctx.core(
        "request.repeat",
        id=args.id,
        n=args.n,
        number=args.number,
        between=not args.back_to_back,
        seed=args.seed,
    )
    ctx.emit(
        reply,
        [
            f"request {reply['id']} queued at position {reply['position']}: {reply['replicates']} "
            f"replicates of {_fmt(reply['repeats']['params'])} ({reply['budget']} experiments "
            "with the conditions between)"
        ],
    )
    return _watch(ctx, reply["id"], args.interval) if args.watch else EXIT_OK


def cmd_propose(ctx: Context, args: argparse.Namespace) -> int:
    if bool(args.values) == bool(args.csv):
        raise UsageError("propose: give one point as NAME=VALUE ... or --csv FILE (one of them)")
    points = read_points_csv(args.csv) if args.csv else [parse_point(args.values)]
    reply = ctx.core("request.propose", id=args.id, points=points)
    lines = [f"request {args.id}: {len(reply['plan'])} point(s) to run before the optimizer's"]
    lines += [
        f"  {p['position']:>3}  {_fmt(p['params'])}  ({p['chosen_by']})" for p in reply["plan"]
    ]
    ctx.emit(reply, lines)
    return EXIT_OK


def cmd_suggest(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.core("request.suggest", id=args.id)
    text = (
        f"request {args.id} runs next: {_fmt(reply['point'])} (chosen by {reply['chosen_by']})"
        if reply["point"]
        else f"request {args.id} ({reply['status']}) has no next point"
    )
    ctx.emit(reply, [text])
    return EXIT_OK


def cmd_replicates(ctx: Context, args: argparse.Namespace) -> int:
    groups = ctx.core("request.replicates", id=args.id)
    if not groups:
        ctx.emit(groups, [f"request {args.id}: no replicates"])
        return EXIT_OK
    lines = []
    for g in groups:
        o = g["original"]
        std = "-" if g["std"] is None else f"{g['std']:.4g}"
        cv = "-" if g["cv_percent"] is None else f"{g['cv_percent']:.1f} %"
        mean = "-" if g["mean"] is None else f"{g['mean']:.4g}"
        lines.append(
            f"{_fmt(g['params'])}: request {o['request_id']} experiment {o['number']} and "
            f"{len(g['replicates'])} replicates: mean {mean}, std {std}, CV {cv}"
            + (f", {g['n_failed']} failed" if g["n_failed"] else "")
        )
        runs = [o, *g["replicates"]]
        lines += [
            f"    request {r['request_id']} #{r['number']}: "
            + ("failed" if r["reward"] is None else f"{r['reward']:.4g}")
            for r in runs
        ]
    ctx.emit(groups, lines)
    return EXIT_OK

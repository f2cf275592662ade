"""Synthesis requests from the terminal: submit, watch, queue, show, cancel, export (contract C).

Submission reads a reaction configuration (JSON, paper Fig. S10) locally first so a typo is
reported with its line and column before anything is sent; the core then validates the
chemistry and answers -32602 naming the field, which is shown as a refusal.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from user_control import crate_cli
from user_control.context import Context
from user_control.errors import EXIT_OK, EXIT_REFUSED, UsageError
from user_control.units import duration

FINAL_STATES = ("done", "failed", "cancelled")


# -- input --------------------------------------------------------------------------------------
def read_formula(path: str) -> str:
    """A ``.formula`` file's text; errors name the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"formula file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"formula file {path}: cannot read it as UTF-8 text: {exc}") from None


def read_config(path: str) -> dict[str, Any]:
    """The configuration file as a dict; errors name the file, line and column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"configuration file {path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"configuration file {path}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: a configuration must be a JSON object, got {type(data).__name__}"
        )
    return data


def parse_target(text: str | None) -> dict[str, Any] | None:
    """``--target METRIC`` or ``--target '{"metric": ..., ...}'``."""
    if text is None:
        return None
    if text.lstrip().startswith("{"):
        try:
            target = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--target: column {exc.colno}: not valid JSON: {exc.msg}") from None
        if "metric" not in target:
            raise UsageError('--target: a JSON target needs a "metric"')
        return target
    return {"metric": text}


def parse_space(items: list[str] | None) -> dict[str, dict[str, Any]] | None:
    """``--space T=90:180:0.5`` (name=low:high[:step]) -> the core's ``space`` object."""
    if not items:
        return None
    space: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        parts = spec.split(":")
        if not sep or not name or len(parts) not in (2, 3):
            raise UsageError(f"--space {item!r}: expected NAME=LOW:HIGH[:STEP], e.g. T=90:180:0.5")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise UsageError(f"--space {item!r}: LOW, HIGH and STEP must be numbers") from None
        if numbers[0] >= numbers[1]:
            raise UsageError(f"--space {item!r}: LOW must be below HIGH")
        space[name] = {"bound": numbers[:2]}
        if len(numbers) == 3:
            if numbers[2] <= 0:
                raise UsageError(f"--space {item!r}: STEP must be > 0")
            space[name]["dx"] = numbers[2]
    return space


# -- rendering ------------------------------------------------------------------------------------
def _params(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    return ", ".join(
        f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}" for k, v in params.items()
    )


def _reward(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def eta_text(info: dict[str, Any]) -> str:
    """Time left, and on which clock: the wall clock (what a person waits), measured on recent
    experiments or assumed (the paper's 2 min each, before anything was timed), with a
    simulated lab's own, faster clock given apart."""
    text = duration(info["eta_s"])
    if info.get("eta_basis") == "measured" and info.get("experiment_s") is not None:
        text += f" (wall clock, {duration(info['experiment_s'])} per experiment measured"
    elif info.get("eta_basis") == "assumed":
        text += " (wall clock, assumed 2 min per experiment until one is timed"
    else:
        return text  # a core from before the basis was given
    if info.get("eta_lab_s") is not None:
        text += f"; {duration(info['eta_lab_s'])} on the simulated lab's clock"
    return text + ")"


def render_request(info: dict[str, Any]) -> list[str]:
    """Header of ``show``: status, reaction, progress, best so far, times."""
    target = info.get("target") or {}
    lines = [
        f"request {info['id']}  {info['status'].upper()}  reaction {info.get('reaction')!r}"
        f"  owner {info.get('owner') or '-'}",
        f"  target {target.get('metric', target)}  optimizer {info.get('optimizer')}  "
        f"experiments {info.get('n_done', 0)} / {info.get('budget')}",
        f"  best so far: reward {_reward(info.get('best_reward'))} at "
        f"{_params(info.get('best_params'))}",
    ]
    if info["status"] == "queued":
        lines.append(f"  position in queue {info.get('position')}")
    if info.get("eta_s") is not None and info["status"] not in FINAL_STATES:
        lines.append(f"  estimated time left {eta_text(info)}")
        if info["status"] == "queued" and info.get("estimated_start_s") is not None:
            lines.append(f"  starts in about {duration(info['estimated_start_s'])}")
    if info.get("current_step"):
        lines.append(f"  now: {info['current_step']}")
    times = [
        f"{label} {info[key]}"
        for label, key in (
            ("created", "created_at"),
            ("started", "started_at"),
            ("finished", "finished_at"),
        )
        if info.get(key)
    ]
    lines.append("  " + "  ".join(times))
    if info.get("failure_reason"):
        lines.append(f"  failure: {info['failure_reason']}")
    if info.get("stop_reason"):
        lines.append(f"  stopped because: {info['stop_reason']}")
    return lines


def render_experiments(experiments: list[dict[str, Any]]) -> list[str]:
    """Experiments table; ``*`` marks the best reward so far."""
    if not experiments:
        return ["  no experiments yet"]
    names: list[str] = []
    for exp in experiments:
        names.extend(k for k in (exp.get("params") or {}) if k not in names)
    rewarded = [e for e in experiments if e.get("reward") is not None]
    best = max(rewarded, key=lambda e: e["reward"]) if rewarded else None
    # which optimizer call proposed each point; cores from before batches do not say
    batched = any(e.get("batch") is not None for e in experiments)
    header = f"  {'#':>4}" + (f"  {'batch':>5}" if batched else "") + f"  {'status':<9}"
    lines = [header + "".join(f"{n:>10}" for n in names) + f"{'reward':>12}"]
    for exp in experiments:
        params = exp.get("params") or {}
        cells = "".join(
            f"{params[n]:>10g}" if isinstance(params.get(n), int | float) else f"{'-':>10}"
            for n in names
        )
        mark = " *" if exp is best else ""
        batch = f"  {exp.get('batch') or '-':>5}" if batched else ""
        line = (
            f"  {exp['number']:>4}{batch}  {exp['status']:<9}{cells}"
            f"{_reward(exp.get('reward')):>12}"
        )
        if exp.get("error"):
            line += f"  error: {exp['error']}"
        lines.append(line + mark)
    return lines


# -- commands -----------------------------------------------------------------------------------
def watch_request(ctx: Context, request_id: int, interval_s: float) -> dict[str, Any]:
    """Poll ``request.status`` every ``interval_s`` s with a progress bar until it is final."""
    info = ctx.core("request.status", id=request_id)
    bar = tqdm(
        total=info["budget"],
        desc=f"request {request_id}",
        unit="expt",
        file=ctx.err,
        dynamic_ncols=True,
        disable=ctx.as_json,
    )
    try:
        while True:
            bar.n = min(int(info.get("n_done") or 0), info["budget"])
            postfix = f"{info['status']}, best {_reward(info.get('best_reward'))}"
            if info.get("eta_s") is not None and info["status"] not in FINAL_STATES:
                basis = " assumed" if info.get("eta_basis") == "assumed" else ""
                postfix += f", ETA {duration(info['eta_s'])}{basis}"
            bar.set_postfix_str(postfix, refresh=False)
            bar.refresh()
            if info["status"] in FINAL_STATES:
                return info
            time.sleep(interval_s)
            info = ctx.core("request.status", id=request_id)
    finally:
        bar.close()


def finish_watch(ctx: Context, info: dict[str, Any]) -> int:
    """Summary after a watch; exit 0 only when the request ended ``done``."""
    ctx.emit(info, render_request(info))
    if info["status"] == "done":
        return EXIT_OK
    reason = info.get("failure_reason") or info.get("stop_reason") or ""
    ctx.err.write(
        f"error: request {info['id']} ended {info['status']}{': ' + reason if reason else ''}\n"
    )
    return EXIT_REFUSED


def _watch(ctx: Context, request_id: int, interval_s: float) -> int:
    try:
        info = watch_request(ctx, request_id, interval_s)
    except KeyboardInterrupt:
        ctx.err.write(
            f"\nstopped watching; request {request_id} goes on (`cancel {request_id}` stops it)\n"
        )
        return EXIT_OK
    return finish_watch(ctx, info)


def cmd_submit(ctx: Context, args: argparse.Namespace) -> int:
    """``submit CONFIG.json | FILE.formula | --formula F [--space ...]  [--target] [--budget]
    [--watch]``."""
    if (args.config_file is None) == (args.formula is None):
        raise UsageError("submit: give a configuration file or --formula (one of them)")
    params: dict[str, Any] = {"seed": args.seed}
    formula = args.formula
    if args.config_file is not None and args.config_file.endswith(".formula"):
        formula = read_formula(args.config_file)  # a formula file: its vary/fix lines
    elif args.config_file is not None:
        params["config"] = read_config(args.config_file)
    if formula is not None:
        # --space rows over the formula's own "# vary"/"# fix" lines (the core merges them and
        # says so when neither gives a searched variable)
        params.update(formula=formula, space=parse_space(args.space) or {})
    optional = {
        "target": parse_target(args.target),
        "budget": args.budget,
        "optimizer": args.optimizer,
        "name": args.name,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if args.points and args.design:
        raise UsageError("submit: give --points or --design, not both")
    if args.points:
        from user_control.plans_cli import read_points_csv

        params["points"] = read_points_csv(args.points)
    elif args.design:
        params["design"] = {"kind": args.design, "levels": args.levels}
    reply = ctx.core("request.submit", **params)
    ctx.emit(
        reply,
        [
            f"request {reply['id']} {reply['status']} at position {reply['position']} "
            f"(budget {reply['budget']} experiments, optimizer {reply['optimizer']})"
        ],
    )
    if not args.watch:
        return EXIT_OK
    return _watch(ctx, reply["id"], args.interval)


def cmd_watch(ctx: Context, args: argparse.Namespace) -> int:
    """``watch ID``: follow a request already submitted."""
    return _watch(ctx, args.id, args.interval)


def cmd_queue(ctx: Context, args: argparse.Namespace) -> int:
    """``queue``: active requests in FIFO order with their estimated start."""
    rows = ctx.core("queue.list")
    if not rows:
        ctx.emit(rows, ["queue is empty"])
        return EXIT_OK
    lines = [
        f"{'pos':>4} {'id':>5}  {'status':<9} {'owner':<10} {'progress':>9}  starts in  reaction"
    ]
    for row in rows:
        progress = f"{row.get('n_done', 0)}/{row.get('budget')}"
        starts = "now" if row["status"] == "running" else duration(row.get("estimated_start_s"))
        lines.append(
            f"{row.get('position') or '-':>4} {row['id']:>5}  {row['status']:<9} "
            f"{row.get('owner') or '-':<10} {progress:>9}  {starts:<9}  {row.get('reaction')}"
        )
    ctx.emit(rows, lines)
    return EXIT_OK


def cmd_requests(ctx: Context, args: argparse.Namespace) -> int:
    """``requests [--mine] [--limit N]``: recent requests, newest first (yours only, unless
    your account is staff or you hold the installation token)."""
    if args.mine and not ctx.settings.user:
        raise UsageError("requests --mine: set the user (--user, MAOSIC_USER or the config file)")
    rows = ctx.core("request.list", mine=bool(args.mine), limit=args.limit)
    lines = [
        f"{row['id']:>5}  {row['status']:<9} {row.get('owner') or '-':<10} "
        f"{row.get('n_done', 0)}/{row.get('budget')}  best {_reward(row.get('best_reward'))}  "
        f"{row.get('reaction')}"
        for row in rows
    ] or ["no requests"]
    ctx.emit(rows, lines)
    return EXIT_OK


def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    """``show ID [--explain]``: the request, its experiments and the best so far; with
    ``--explain`` which inputs drove the result (maosic/explain.py, computed by the core)."""
    info = ctx.core("request.status", id=args.id, experiments=True)
    lines = render_request(info) + render_experiments(info.get("experiments", []))
    if getattr(args, "explain", False):
        info = {**info, "explanation": ctx.core("request.explain", id=args.id)}
        lines += [""] + render_explanation(info["explanation"])
    ctx.emit(info, lines)
    return EXIT_OK


def render_explanation(found: dict[str, Any]) -> list[str]:
    """The explanation as the terminal shows it: one row per input, then R² and the verdict."""
    if not found.get("available"):
        return [f"what drove the result: not available: {found.get('reason')}"]
    lines = [
        "what drove the result (SHAP values of a surrogate fitted on the experiments):",
        f"  {'input':12s} {'importance':>11s}  {'direction':14s} range explored",
    ]
    for factor in found["factors"]:
        direction = "raises it" if factor["direction"] >= 0 else "lowers it"
        lines.append(
            f"  {factor['name']:12s} {factor['importance']:11.4g}  "
            f"{direction} ({factor['direction']:+.2f}) {100 * factor['span']:5.0f} %"
        )
    lines.append(
        f"  surrogate R² on held-out experiments: {found['r2_heldout']:.2f} "
        f"({found['folds']}-fold, {found['n']} experiments, {found['method']})"
    )
    if found["verdict"] == "ok":
        lines.append("  verdict: ok")
    else:
        lines.append(
            f"  verdict: {found['verdict']}, do not trust it: " + "; ".join(found["reasons"])
        )
    return lines


def cmd_cancel(ctx: Context, args: argparse.Namespace) -> int:
    """``cancel ID [--wait]``: a queued request is cancelled at once, a running one stops after
    the experiment in progress (``--wait`` polls until it has)."""
    info = ctx.core("request.cancel", id=args.id)
    if info["status"] not in FINAL_STATES and args.wait:
        while info["status"] not in FINAL_STATES:
            time.sleep(args.interval)
            info = ctx.core("request.status", id=args.id)
    if info["status"] in FINAL_STATES:
        line = f"request {info['id']} {info['status']}"
    else:
        line = (
            f"request {info['id']} {info['status']}: cancellation requested, it stops after "
            "the experiment in progress (`cancel --wait` waits for it)"
        )
    ctx.emit(info, [line])
    return EXIT_OK


def write_experiments_csv(experiments: list[dict[str, Any]], handle: TextIO) -> int:
    """One row per experiment: number, status, every parameter, reward, error, times."""
    names: list[str] = []
    for exp in experiments:
        names.extend(k for k in (exp.get("params") or {}) if k not in names)
    columns = ["number", "status", *names, "reward", "error", "started_at", "finished_at"]
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    for exp in experiments:
        params = exp.get("params") or {}
        writer.writerow(
            [exp.get("number"), exp.get("status")]
            + [params.get(n, "") for n in names]
            + [
                "" if exp.get("reward") is None else exp["reward"],
                exp.get("error") or "",
                exp.get("started_at") or "",
                exp.get("finished_at") or "",
            ]
        )
    return len(experiments)


def cmd_export(ctx: Context, args: argparse.Namespace) -> int:
    """``export ID --csv FILE`` (``-`` for standard output) or ``--ro-crate DIR``."""
    if args.ro_crate is not None:
        return crate_cli.cmd_export_crate(ctx, args)
    info = ctx.core("request.status", id=args.id, experiments=True)
    experiments = info.get("experiments", [])
    if args.csv == "-":
        write_experiments_csv(experiments, ctx.out)
        ctx.out.flush()
        return EXIT_OK
    try:
        with open(args.csv, "w", newline="", encoding="utf-8") as handle:
            count = write_experiments_csv(experiments, handle)
    except OSError as exc:
        raise UsageError(f"--csv {args.csv}: cannot write: {exc.strerror}") from None
    ctx.emit(
        {"id": args.id, "rows": count, "file": args.csv},
        [f"request {args.id}: {count} experiments written to {args.csv}"],
    )
    return EXIT_OK

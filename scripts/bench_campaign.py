"""Software overhead of the closed loop, and the wall time of a whole campaign.

    python scripts/bench_campaign.py [--budget 250] [--optimizer NAME] [--seed 0]
                                     [--database-url URL]

Runs the CsPbBr3 request of examples/cspbbr3.json against a simulated lab daemon (in this
process, over real HTTP JSON-RPC, waits costing no wall time) on a fresh SQLite database, then
prints per experiment: the wall time (all of it is software, since simulated waits are free),
the part spent inside daemon calls (JSON-RPC round trips incl. the simulator), and the core's own
part (compile, optimizer, analyzer, database), plus the campaign's total wall time.

The breakdown comes from the campaign's own stopwatch (maosic/phases.py): one loop iteration
from the stop check to the committed result, split into the phases of PHASES; "other" is what
they leave over. Daemon calls are listed per method: count per experiment and wall time per call
seen by the core (a call sent in a JSON-RPC batch gets an equal share of the batch's round trip).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from hardware_interface.server import start_daemon  # noqa: E402
from maosic.db.crypto import LogCipher  # noqa: E402
from maosic.db.models import Experiment, HardwareCommand  # noqa: E402
from maosic.db.schema import create_or_upgrade  # noqa: E402
from maosic.db.session import make_engine, session_factory  # noqa: E402
from maosic.phases import PHASES, ExperimentTiming  # noqa: E402
from maosic.rpc_auth import INSTALLATION  # noqa: E402
from maosic.service import CoreService  # noqa: E402
from maosic.worker import Worker  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=250)
    parser.add_argument("--optimizer", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="maosic-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    engine = make_engine(url)
    create_or_upgrade(engine, url)
    sessions = session_factory(engine)
    daemon = start_daemon(sim=True, port=0, seed=args.seed, speed=0.0)
    try:
        config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text(encoding="utf-8"))
        service = CoreService(sessions)
        sub = service.submit(
            INSTALLATION,
            config=config,
            budget=args.budget,
            optimizer=args.optimizer,
            seed=args.seed,
        )
        timings: list[ExperimentTiming] = []
        worker = Worker(
            sessions,
            daemon.url,
            LogCipher.from_file(tmp / "log.key"),
            poll_s=0.01,
            on_timing=timings.append,
        )
        started = time.perf_counter()
        worker.run_once()
        wall = time.perf_counter() - started
        status = service.status(INSTALLATION, sub["id"])
    finally:
        daemon.stop()
    with sessions() as session:
        rows = session.execute(
            select(
                Experiment.id, Experiment.started_at, Experiment.finished_at, Experiment.lab_time_s
            )
            .where(Experiment.request_id == sub["id"])
            .order_by(Experiment.number)
        ).all()
        rpc_ms = dict(
            session.execute(
                select(HardwareCommand.experiment_id, func.sum(HardwareCommand.duration_ms))
                .where(HardwareCommand.request_id == sub["id"])
                .group_by(HardwareCommand.experiment_id)
            ).all()
        )
    per_exp = np.array([(f - s).total_seconds() * 1000 for _, s, f, _ in rows])
    in_rpc = np.array([rpc_ms.get(i, 0.0) for i, *_ in rows])
    core_ms = per_exp - in_rpc
    lab_h = sum(r[3] or 0 for r in rows) / 3600
    print(
        f"campaign: {len(rows)} experiments ({status['status']}: {status['stop_reason']}), "
        f"optimizer {sub['optimizer']}, database {engine.url.get_backend_name()}"
    )
    print(
        f"wall time of the whole campaign: {wall:.1f} s (goal < 60 s); simulated lab time "
        f"{lab_h:.1f} h"
    )
    print(f"best reward {status['best_reward']:.4g} at {status['best_params']}")
    if engine.url.get_backend_name() == "sqlite":
        print("experiment row started_at -> finished_at, ms:  median     p95     max")
        for name, values in (
            ("wall (= software overhead)", per_exp),
            ("  in daemon calls", in_rpc),
            ("  in the core", core_ms),
        ):
            print(f"  {name:44s} {_stats(values)}")
    else:
        # MySQL DATETIME columns keep whole seconds: the rows cannot time an experiment.
        print("(experiment rows keep whole seconds on this database: see the breakdown below)")
    print_breakdown(timings)
    print(
        "loop period (wall / experiments, incl. the optimizer's ask and tell): "
        f"{wall / max(len(rows), 1) * 1000:.1f} ms"
    )
    whole = np.array([t.total_ms for t in timings])
    mine = np.array([t.total_ms - _optimizer_ms(t) for t in timings])
    print(
        f"goal: median software overhead < 50 ms: whole iteration {np.median(whole):.1f} ms -> "
        f"{'met' if np.median(whole) < 50 else 'NOT met'}; without the optimizer's ask, tell "
        f"and checkpoint {np.median(mine):.1f} ms -> {'met' if np.median(mine) < 50 else 'NOT met'}"
    )
    return 0


def _stats(values: np.ndarray) -> str:
    if len(values) == 0:
        return "    n/a"
    return f"{np.median(values):7.1f} {np.percentile(values, 95):7.1f} {values.max():7.1f}"


def _optimizer_ms(timing: ExperimentTiming) -> float:
    return sum(timing.phases_ms.get(name, 0.0) for name in ("ask", "tell", "checkpoint"))


def print_breakdown(timings: list[ExperimentTiming]) -> None:
    """Per-phase and per-daemon-method figures over the stored experiments."""
    if not timings:
        print("no experiment timings recorded")
        return
    print("one loop iteration (stop check -> result committed), ms:  median     p95     max")
    whole = np.array([t.total_ms for t in timings])
    print(f"  {'whole iteration':55s} {_stats(whole)}")
    for name in PHASES:
        values = np.array([t.phases_ms.get(name, 0.0) for t in timings])
        print(f"    {name:53s} {_stats(values)}")
    print(f"    {'other':53s} {_stats(np.array([t.other_ms for t in timings]))}")
    trips = np.array([t.round_trips for t in timings])
    print(f"  daemon round trips per experiment: median {np.median(trips):.0f}, max {trips.max()}")
    per_method: dict[str, list[float]] = {}
    for timing in timings:
        for method, ms in timing.calls:
            per_method.setdefault(method, []).append(ms)
    print("  daemon calls per method:            calls/exp   ms/call median   ms/exp")
    n = len(timings)
    for method, values in sorted(per_method.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"    {method:32s} {len(values) / n:9.2f} {np.median(values):16.2f} "
            f"{sum(values) / n:8.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())

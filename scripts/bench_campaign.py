"""Software overhead of the closed loop, and the wall time of a whole campaign.

    python scripts/bench_campaign.py [--budget 250] [--optimizer NAME] [--seed 0]
                                     [--database-url URL]

Runs the CsPbBr3 request of examples/cspbbr3.json against a simulated lab daemon (in this
process, over real HTTP JSON-RPC, waits costing no wall time) on a fresh SQLite database, then
prints per experiment: the wall time (all of it is software, since simulated waits are free),
the part spent inside daemon calls (JSON-RPC round trips incl. the simulator), and the core's own
part (compile, optimizer, analyzer, database), plus the campaign's total wall time.
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
            config=config, budget=args.budget, optimizer=args.optimizer, seed=args.seed
        )
        worker = Worker(sessions, daemon.url, LogCipher.from_file(tmp / "log.key"), poll_s=0.01)
        started = time.perf_counter()
        worker.run_once()
        wall = time.perf_counter() - started
        status = service.status(sub["id"])
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
    print("per experiment, ms:            median     p95     max")
    for name, values in (
        ("wall (= software overhead)", per_exp),
        ("  in daemon calls", in_rpc),
        ("  in the core", core_ms),
    ):
        print(
            f"  {name:28s} {np.median(values):7.1f} {np.percentile(values, 95):7.1f} "
            f"{values.max():7.1f}"
        )
    print(
        "loop period (wall / experiments, incl. the optimizer's ask and tell): "
        f"{wall / max(len(rows), 1) * 1000:.1f} ms"
    )
    print(
        f"goal: median software overhead < 50 ms -> "
        f"{'met' if np.median(per_exp) < 50 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the simulated lab: campaign speed in instant mode and the measured noise.

    python scripts/bench_sim.py [--experiments 250] [--seed 0]

Runs random-point campaigns through SimLab exactly as a reaction configuration would (fill the
syringes, heat until stable, flow for 2 x residence time, sample, measure, waste) and prints:
wall time per campaign, simulated hours, repeatability of |CD| and absorbance at the optimum,
and the best-of-16 random search on the Cs3Cu2I5 PLQY landscape.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware_interface.sim import chemistry as ch  # noqa: E402
from hardware_interface.sim import rig  # noqa: E402
from hardware_interface.sim.world import SimLab  # noqa: E402


def _fill(lab: SimLab, needs_mL: list[float]) -> None:
    longest = 0.0
    for pid, need in zip(lab.pump_ids, needs_mL, strict=True):
        held = lab.syringe_volume_mL(pid)
        if held < need + 1e-3:
            room = lab.syringe_capacity_mL(pid) - held
            longest = max(longest, lab.pump_start(pid, "withdraw", room, lab.spec.max_rate_mL_min))
    lab.wait(longest)


def _heat(lab: SimLab, t_C: float) -> None:
    lab.heater_set(t_C, 30.0)
    while not lab.heater_stable():
        lab.wait(2.0)


def cspbbr3_experiment(lab: SimLab, t_C: float, c: float) -> tuple[float, dict]:
    """One loop; returns (|CD| at the exciton read from the spectra, measured spectra)."""
    rates = rig.cspbbr3_rates_mL_min(c)
    needs = [r * rig.EQUILIBRATION_S / 60.0 for r in rates]
    _fill(lab, needs)
    _heat(lab, t_C)
    durations = [
        lab.pump_start(pid, "infuse", v, r)
        for pid, v, r in zip(lab.pump_ids, needs, rates, strict=True)
        if v > 0
    ]
    lab.wait(max(durations))
    lab.wait(lab.robot_move("sampler"))
    lab.wait(lab.robot_move("cd"))
    spec = lab.measure_cd(100.0)
    lab.wait(lab.robot_move("waste"))
    wl, absorb = np.array(spec["wavelength_nm"]), np.array(spec["absorbance"])
    window = (wl > 420.0) & (wl < 480.0)
    i = int(np.flatnonzero(window)[np.argmax(absorb[window])])
    return abs(float(spec["cd_mdeg"][i])), spec


def cs3cu2i5_experiment(lab: SimLab, x: dict[str, float]) -> float:
    keys = ["q_CuI", "q_ZnI2", "q_CsOA", "q_ODE"]
    minutes = 2.5 * lab.residence_time_s / 60.0
    needs = [x[k] / 1000.0 * minutes for k in keys]
    _fill(lab, needs)
    _heat(lab, x["T"])
    durations = [
        lab.pump_start(pid, "infuse", v, x[k] / 1000.0)
        for pid, v, k in zip(lab.pump_ids, needs, keys, strict=True)
    ]
    lab.wait(max(durations))
    return float(lab.measure_pl(100.0, 300.0)["plqy_proxy_pct"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    lab = SimLab("cspbbr3", seed=args.seed)
    t0 = time.perf_counter()
    for _ in range(args.experiments):
        cspbbr3_experiment(lab, float(rng.uniform(90, 180)), float(rng.uniform(0.2, 1.2)))
    wall = time.perf_counter() - t0
    print(
        f"cspbbr3: {args.experiments} experiments in {wall:.2f} s wall "
        f"({1000 * wall / args.experiments:.1f} ms each), {lab.clock.now() / 3600:.1f} h simulated"
    )

    lab = SimLab("cspbbr3", seed=args.seed + 1)
    (t_opt, c_opt), v_opt = ch.CSPBBR3_OPTIMUM
    cds, peaks = [], []
    for _ in range(30):
        cd, spec = cspbbr3_experiment(lab, t_opt, c_opt)
        cds.append(cd)
        peaks.append(float(np.max(spec["absorbance"][120:180])))
    print(
        f"cspbbr3 at the optimum ({t_opt}, {c_opt}), 30 samples: |CD| {np.mean(cds):.3f} "
        f"+- {np.std(cds):.3f} mdeg (truth {v_opt:.3f}); exciton absorbance CV "
        f"{100 * np.std(peaks) / np.mean(peaks):.2f} %"
    )

    lab = SimLab("cs3cu2i5", seed=args.seed)
    space = ch.CS3CU2I5_SPACE
    lo, hi = np.array(space.lower), np.array(space.upper)
    n = min(args.experiments, 100)
    t0 = time.perf_counter()
    for _ in range(n):
        point = lo + (hi - lo) * rng.random(5)
        cs3cu2i5_experiment(lab, dict(zip(space.names, point, strict=True)))
    wall = time.perf_counter() - t0
    print(
        f"cs3cu2i5: {n} experiments in {wall:.2f} s wall, {lab.clock.now() / 3600:.1f} h simulated"
    )
    x_opt, plqy_opt = ch.CS3CU2I5_OPTIMUM
    reads = [cs3cu2i5_experiment(lab, x_opt) for _ in range(10)]
    print(
        f"cs3cu2i5 at the optimum, 10 in-line reads: PLQY proxy {np.mean(reads):.2f} "
        f"+- {np.std(reads):.2f} % (truth {plqy_opt:.2f})"
    )
    pts = lo + (hi - lo) * rng.random((5000, 16, 5))
    best = ch.cs3cu2i5_plqy_truth({k: pts[..., i] for i, k in enumerate(space.names)}).max(axis=1)
    print(
        f"cs3cu2i5 random search, best of 16 (5000 repeats): mean {best.mean():.1f} %, "
        f"median {np.median(best):.1f} % (global optimum {plqy_opt:.1f} %)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

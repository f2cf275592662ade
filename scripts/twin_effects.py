"""The Cs3Cu2I5 twin's factor effects next to the self-driving fluidic lab papers' SHAP analysis.

    nice -n 10 .venv/bin/python scripts/twin_effects.py [--points 500] [--out docs/img]

Samples the example's 5-D box with a fixed Latin hypercube, evaluates the twin's noise-free PLQY
and computes, per factor: the Spearman correlation with PLQY, and exact interventional Shapley
values of the twin itself (all 2^5 coalitions over a background sample: the values SHAP's
explainers estimate for a fitted model). Prints a Markdown table (the one in
docs/simulated_lab.md) and writes ``twin_effects.png``: the SHAP summary (value against factor
level) and mean |SHAP| beside the papers' order and signs.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from scipy.stats import qmc, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware_interface.sim import chemistry as ch  # noqa: E402

SPACE = ch.CS3CU2I5_SPACE
LABELS = {"T": "T", "q_CuI": "CuI", "q_ZnI2": "ZnI2", "q_CsOA": "CsOA", "q_ODE": "ODE"}
# The papers' SHAP analysis (Chem3, Cs3Cu2I5): direction of each factor's effect on PLQY and its
# rank (1 = most important); ODE had no significant effect.
PAPER = {
    "q_CsOA": ("falls", 1),
    "T": ("rises", 2),
    "q_CuI": ("rises", 3),
    "q_ZnI2": ("rises", 4),
    "q_ODE": ("none", 5),
}


def plqy(x: np.ndarray) -> np.ndarray:
    return np.asarray(ch.cs3cu2i5_plqy_truth({n: x[..., i] for i, n in enumerate(SPACE.names)}))


def shapley_values(x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Exact interventional Shapley values of ``plqy`` at every row of x (shape (n, d)).

    v(S) = mean over the background of plqy(x_S, b_rest); phi_i = sum over S without i of
    |S|! (d-|S|-1)! / d! (v(S + i) - v(S)).
    """
    n, d = x.shape
    value = {}
    for size in range(d + 1):
        for subset in itertools.combinations(range(d), size):
            mixed = np.broadcast_to(background, (n, *background.shape)).copy()
            for i in subset:
                mixed[:, :, i] = x[:, None, i]
            value[subset] = plqy(mixed).mean(axis=1)
    phi = np.zeros((n, d))
    fact = [1, 1, 2, 6, 24, 120, 720, 5040, 40320]
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for size in range(d):
            weight = fact[size] * fact[d - size - 1] / fact[d]
            for subset in itertools.combinations(others, size):
                with_i = tuple(sorted((*subset, i)))
                phi[:, i] += weight * (value[with_i] - value[subset])
    return phi


def effects(points: int, seed: int = 22) -> dict[str, np.ndarray | dict[str, dict[str, float]]]:
    unit = qmc.LatinHypercube(d=len(SPACE.names), seed=seed).random(points)
    x = qmc.scale(unit, SPACE.lower, SPACE.upper)
    y = plqy(x)
    background = x[np.random.default_rng(seed).choice(points, size=min(100, points), replace=False)]
    phi = shapley_values(x, background)
    table: dict[str, dict[str, float]] = {}
    for i, name in enumerate(SPACE.names):
        table[name] = {
            "spearman": float(spearmanr(x[:, i], y)[0]),
            "mean_abs_shap": float(np.mean(np.abs(phi[:, i]))),
            "shap_direction": float(spearmanr(x[:, i], phi[:, i])[0]),
        }
    order = sorted(table, key=lambda n: table[n]["mean_abs_shap"], reverse=True)
    for rank, name in enumerate(order, start=1):
        table[name]["rank"] = rank
    return {"x": x, "y": y, "phi": phi, "table": table}


def markdown(table: dict[str, dict[str, float]]) -> str:
    lines = [
        "| factor | paper: PLQY ... | paper rank | twin Spearman | twin mean abs SHAP (% PLQY)"
        " | twin rank |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(table, key=lambda n: PAPER[n][1]):
        row = table[name]
        direction, rank = PAPER[name]
        lines.append(
            f"| {LABELS[name]} | {direction} | {rank} | {row['spearman']:+.2f} | "
            f"{row['mean_abs_shap']:.2f} | {int(row['rank'])} |"
        )
    return "\n".join(lines)


def plot(result: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, phi, table = result["x"], result["phi"], result["table"]
    order = sorted(SPACE.names, key=lambda n: PAPER[n][1])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    lo, hi = np.array(SPACE.lower), np.array(SPACE.upper)
    for row, name in enumerate(order):
        i = SPACE.names.index(name)
        level = (x[:, i] - lo[i]) / (hi[i] - lo[i])
        jitter = np.random.default_rng(row).uniform(-0.25, 0.25, size=len(level))
        sc = ax1.scatter(phi[:, i], row + jitter, c=level, cmap="coolwarm", s=6, vmin=0, vmax=1)
    ax1.axvline(0.0, color="grey", lw=0.8)
    ax1.set_yticks(range(len(order)), [LABELS[n] for n in order])
    ax1.invert_yaxis()
    ax1.set_xlabel("SHAP value of the twin (% PLQY)")
    ax1.set_title("Twin: effect of each factor (colour: factor level, blue low, red high)")
    fig.colorbar(sc, ax=ax1, label="factor level (low -> high)")
    twin = [table[n]["mean_abs_shap"] for n in order]
    twin_rel = np.array(twin) / max(twin)
    ypos = np.arange(len(order))
    ax2.barh(ypos - 0.2, twin_rel, height=0.4, label="twin: mean |SHAP| (relative)")
    paper_rank = np.array([PAPER[n][1] for n in order], dtype=float)
    ax2.barh(
        ypos + 0.2,
        (len(order) + 1 - paper_rank) / len(order),
        height=0.4,
        label="paper: rank (1 = longest bar)",
        color="tab:orange",
    )
    for y, name in zip(ypos, order, strict=True):
        sign = {"rises": "+", "falls": "-", "none": "0"}[PAPER[name][0]]
        rho = table[name]["spearman"]
        twin_sign = "+" if rho > 0.1 else "-" if rho < -0.1 else "0"
        ax2.text(1.03, y, f"paper {sign} / twin {twin_sign}", va="center", fontsize=8)
    ax2.set_yticks(ypos, [LABELS[n] for n in order])
    ax2.invert_yaxis()
    ax2.set_xlim(0, 1.45)
    ax2.set_title("Importance and sign: twin vs paper")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "twin_effects.png"
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None, help="folder for twin_effects.png")
    args = parser.parse_args(argv)
    result = effects(args.points)
    print(markdown(result["table"]))
    if args.out is not None:
        print(f"wrote {plot(result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

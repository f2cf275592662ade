"""Draw the simulated lab's |CD| landscape and spectra so a person can judge the digital twin.

    python scripts/plot_landscape.py [--out DIR] [--seed N]

Writes into DIR (default ./sim_plots):
    cspbbr3_landscape.png   |CD| (mdeg) at the first exciton over (T, C), like the paper's Fig. 2a,
                            with the global and local optima marked and a noisy-sample panel
    cspbbr3_spectra.png     absorbance and CD spectra at a few conditions
    cs3cu2i5_pl.png         Cs3Cu2I5 PL spectra at a few conditions and PLQY vs T
    heater_response.png     heater warm-up and hold under the PID
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware_interface.sim import chemistry as ch  # noqa: E402
from hardware_interface.sim import rig  # noqa: E402
from hardware_interface.sim.heater import HeaterModel  # noqa: E402


def plot_landscape(out: Path, seed: int) -> Path:
    space = ch.CSPBBR3_SPACE
    t = np.arange(space.lower[0], space.upper[0] + 1e-9, space.resolution[0])
    c = np.arange(space.lower[1], space.upper[1] + 1e-9, space.resolution[1])
    tt, cc = np.meshgrid(t, c, indexing="xy")
    truth = ch.cspbbr3_cd_truth(tt, cc)
    rng = np.random.default_rng(seed)
    ts = rng.uniform(space.lower[0], space.upper[0], 250)
    cs = rng.uniform(space.lower[1], space.upper[1], 250)
    noisy = np.array([ch.cspbbr3_cd_noisy(a, b, rng) for a, b in zip(ts, cs, strict=True)])

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    ax = axes[0]
    mesh = ax.pcolormesh(tt, cc, truth, cmap="viridis", shading="auto", vmin=0, vmax=1.05)
    ax.contour(tt, cc, truth, levels=[0.2, 0.4, 0.6, 0.8, 0.95], colors="w", linewidths=0.6)
    (t_opt, c_opt), v_opt = ch.CSPBBR3_OPTIMUM
    (t_loc, c_loc), v_loc = ch.CSPBBR3_LOCAL_OPTIMUM
    ax.plot(t_opt, c_opt, "r*", ms=14, label=f"global {v_opt:.2f} mdeg")
    ax.plot(t_loc, c_loc, "o", mfc="none", mec="orange", ms=10, mew=2, label=f"local {v_loc:.2f}")
    ax.axvline(160.0, color="w", ls="--", lw=0.8)
    ax.set(xlabel="T (°C)", ylabel="C (mmol/mL)", title="Noise-free |CD| at the first exciton")
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(mesh, ax=ax, label="|CD| (mdeg)")
    ax = axes[1]
    sc = ax.scatter(ts, cs, c=noisy, cmap="viridis", vmin=0, vmax=1.05, s=22, edgecolor="k", lw=0.3)
    ax.set(xlabel="T (°C)", ylabel="C (mmol/mL)", title="250 random noisy measurements")
    ax.set_xlim(space.lower[0], space.upper[0])
    ax.set_ylim(space.lower[1], space.upper[1])
    fig.colorbar(sc, ax=ax, label="|CD| (mdeg)")
    path = out / "cspbbr3_landscape.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_spectra(out: Path, seed: int) -> Path:
    conditions = [(130.0, 0.8), (110.0, 0.4), (130.0, 0.4), (170.0, 0.8), (130.0, 1.2)]
    rng = np.random.default_rng(seed)
    fig, (ax_a, ax_c) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, constrained_layout=True)
    for t, c in conditions:
        spec = ch.cspbbr3_spectra(t, c, rng, handedness=1)
        label = f"{t:.0f} °C, {c:.1f} mmol/mL" + (" (saturated)" if spec["saturated"] else "")
        (line,) = ax_a.plot(spec["wavelength_nm"], spec["absorbance"], label=label)
        ax_c.plot(spec["wavelength_nm"], spec["cd_mdeg"], color=line.get_color(), lw=1)
        ax_c.axvline(spec["exciton_nm"], color=line.get_color(), ls=":", lw=0.8)
    ax_a.axhline(ch.CSPBBR3_ABS_SATURATION, color="k", ls="--", lw=0.6)
    ax_a.set(ylabel="absorbance", title="CsPbBr3: absorbance and CD (handedness +1)")
    ax_a.legend(fontsize=8)
    ax_c.set(xlabel="wavelength (nm)", ylabel="CD (mdeg)", ylim=(-1.5, 1.5))
    ax_c.axhline(0.0, color="k", lw=0.5)
    path = out / "cspbbr3_spectra.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cs3cu2i5(out: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x_opt = dict(ch.CS3CU2I5_OPTIMUM[0])
    cases = {
        "optimum": x_opt,
        "120 °C": dict(x_opt, T=120.0),
        "165 °C": dict(x_opt, T=165.0),
        "Cs-oleate rich": dict(x_opt, q_CsOA=175.0, q_CuI=100.0),
    }
    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for name, x in cases.items():
        spec = ch.cs3cu2i5_spectra(x, rng)
        ax_s.plot(
            spec["wavelength_nm"], spec["intensity"], label=f"{name}: PLQY {spec['plqy']:.1f} %"
        )
    ax_s.set(xlabel="wavelength (nm)", ylabel="PL (counts)", title="Cs3Cu2I5 PL, 300 nm excitation")
    ax_s.legend(fontsize=8)
    temps = np.linspace(110.0, 180.0, 141)
    ax_t.plot(temps, [ch.cs3cu2i5_plqy_truth(dict(x_opt, T=v)) for v in temps])
    ax_t.set(xlabel="T (°C)", ylabel="PLQY proxy (%)", title="PLQY vs T at the best flows")
    path = out / "cs3cu2i5_pl.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_heater(out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    for setpoint, ramp in ((130.0, 10.0), (130.0, 60.0), (180.0, 60.0), (90.0, 30.0)):
        h = HeaterModel()
        h.set(0.0, setpoint, ramp)
        times = np.arange(0.0, 1500.0, 2.0)
        temps = [h.reading_C(t) for t in times]
        stable = next((t for t in times if h.stable(t)), None)
        label = f"{setpoint:.0f} °C at {ramp:.0f} °C/min, stable at {stable:.0f} s"
        (line,) = ax.plot(times / 60.0, temps, label=label)
        if stable is not None:
            ax.axvline(stable / 60.0, color=line.get_color(), ls=":", lw=0.8)
    ax.set(xlabel="time (min)", ylabel="thermocouple (°C)", title="Heater: 100 W cartridge, PID")
    ax.axhline(rig.AMBIENT_C, color="k", lw=0.5)
    ax.legend(fontsize=8)
    path = out / "heater_response.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("sim_plots"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noisy panels")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (
        plot_landscape(args.out, args.seed),
        plot_spectra(args.out, args.seed),
        plot_cs3cu2i5(args.out, args.seed),
        plot_heater(args.out),
    ):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a sample of reactor output is, and what the spectrometers read from it.

A sample is a set of fluid parcels (from the plug-flow tube), each with the conditions it was
really made under: mean block temperature over its time in the coil and the inlet flows when it
entered.  A sample that did not equilibrate is a genuine mixture: its spectra are the
volume-weighted sum of its parcels' spectra, so it measures as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware_interface.sim import chemistry as chem
from hardware_interface.sim import rig
from hardware_interface.sim.fluidics import Parcel

# Parcels of one sample whose temperatures differ by more than this are not one product.
EQUILIBRATED_T_SPREAD_C = 1.0
EQUILIBRATED_C_SPREAD = 0.01  # relative spread of C (or of each flow) between parcels


@dataclass
class Component:
    """One parcel's share of a sample: volume fraction and the conditions it was made under."""

    weight: float
    conditions: dict[str, float] | None  # None: priming solvent, no product
    yield_factor: float = 1.0  # stoichiometry: 1 at the intended reagent ratio


@dataclass
class Sample:
    """A sample of reactor output (in the cuvette or the in-line cell)."""

    chemistry: str
    components: list[Component]
    taken_at_s: float
    handedness: int  # +1 / -1, random per sample (only |CD| is reproducible)
    gain: float  # sample-to-sample repeatability factor
    t_shift_C: float  # heater ripple seen by this sample's product
    extra: dict[str, Any] = field(default_factory=dict)


def _cspbbr3_conditions(parcel: Parcel, t_eff_C: float) -> tuple[dict[str, float], float]:
    flows = parcel.flows_mL_min
    total = sum(flows.values())
    cs = sum(q * rig.CS_PER_ML.get(r, 0.0) for r, q in flows.items())
    pb = sum(q * rig.PB_PER_ML.get(r, 0.0) for r, q in flows.items())
    c = cs / total if total > 0 else 0.0
    if cs <= 0.0 or pb <= 0.0:
        return {"T": t_eff_C, "C": c}, 0.0
    # Pb:Cs = 2 (P1/P2 = 0.5 with equal stock molarities) is the recipe; off-ratio lowers yield.
    ratio = pb / cs
    yield_factor = float(np.exp(-0.5 * (np.log(ratio / 2.0) / 0.35) ** 2))
    return {"T": t_eff_C, "C": c}, yield_factor


def _cs3cu2i5_conditions(parcel: Parcel, t_eff_C: float) -> tuple[dict[str, float], float]:
    cond = {"T": t_eff_C}
    for reagent, key in rig.CS3CU2I5_FLOW_KEYS.items():
        cond[key] = parcel.flows_mL_min.get(reagent, 0.0) * 1000.0  # mL/min -> uL/min
    has_product = cond["q_CuI"] > 0.0 and cond["q_CsOA"] > 0.0
    return cond, 1.0 if has_product else 0.0


# Sample-to-sample repeatability of the product (relative), per chemistry.
_SAMPLE_CV: dict[str, float] = {
    "cspbbr3": chem.CSPBBR3_SAMPLE_CV,
    "cs3cu2i5": chem.CS3CU2I5_PLQY_CV,
}

_CONDITIONS: dict[str, Callable[[Parcel, float], tuple[dict[str, float], float]]] = {
    "cspbbr3": _cspbbr3_conditions,
    "cs3cu2i5": _cs3cu2i5_conditions,
}


def make_sample(
    chemistry: str,
    parcels: list[Parcel],
    mean_temperature_C: Callable[[float, float], float],
    rng: np.random.Generator,
    taken_at_s: float,
) -> Sample:
    """Turn outlet parcels into a sample; ``mean_temperature_C(t_a, t_b)`` is the heater's."""
    total = sum(p.volume_mL for p in parcels) or 1.0
    comps: list[Component] = []
    for p in parcels:
        if p.prefill or not p.flows_mL_min:
            comps.append(Component(p.volume_mL / total, None, 0.0))
            continue
        t_eff = mean_temperature_C(p.t_in_s, p.t_out_s)
        cond, y = _CONDITIONS[chemistry](p, t_eff)
        comps.append(Component(p.volume_mL / total, cond, y))
    return Sample(
        chemistry=chemistry,
        components=comps,
        taken_at_s=taken_at_s,
        handedness=1 if rng.random() < 0.5 else -1,
        gain=1.0 + rng.normal(0.0, _SAMPLE_CV[chemistry]),
        t_shift_C=rng.normal(0.0, chem.CSPBBR3_T_RIPPLE_C),
    )


def _truth(chemistry: str, cond: dict[str, float]) -> float:
    if chemistry == "cspbbr3":
        return float(chem.cspbbr3_cd_truth(cond["T"], cond["C"]))
    return float(chem.cs3cu2i5_plqy_truth(cond))


def sample_conditions(sample: Sample) -> dict[str, Any]:
    """What the sample really is: mean conditions, whether it is one product, noise-free value.

    "value" is |CD| (mdeg) at the exciton for cspbbr3 and the PLQY proxy (%) for cs3cu2i5, of the
    mixture (volume-weighted, times the stoichiometric yield).
    """
    made = [c for c in sample.components if c.conditions is not None]
    out: dict[str, Any] = {"chemistry": sample.chemistry, "taken_at_s": sample.taken_at_s}
    if not made:
        out.update({"empty": True, "equilibrated": False, "value": 0.0, "handedness": 0})
        return out
    w = np.array([c.weight for c in made])
    keys = list(made[0].conditions or {})
    conds = [c.conditions for c in made if c.conditions is not None]
    means = {k: float(np.average([c[k] for c in conds], weights=w)) for k in keys}
    spread_ok = len(made) == len(sample.components)
    for k in keys:
        vals = np.array([c[k] for c in conds])
        if k == "T":
            spread_ok &= float(np.ptp(vals)) <= EQUILIBRATED_T_SPREAD_C
        else:
            scale = max(abs(means[k]), 1e-12)
            spread_ok &= float(np.ptp(vals)) / scale <= EQUILIBRATED_C_SPREAD
    value = sum(
        c.weight * c.yield_factor * _truth(sample.chemistry, cond)
        for c, cond in zip(made, conds, strict=True)
    )
    out.update(
        {
            "empty": False,
            "equilibrated": bool(spread_ok),
            "value": float(value),
            "handedness": sample.handedness,
            "yield_factor": float(np.average([c.yield_factor for c in made], weights=w)),
        }
    )
    renamed = {"T": "T_C", "C": "C_mmol_mL"}
    out.update({renamed.get(k, k): v for k, v in means.items()})
    return out


def _noise_scale(integration_ms: float) -> float:
    """Shot/read noise relative to a 100 ms acquisition: longer integration, less noise."""
    return float(np.sqrt(100.0 / integration_ms))


def _cs3cu2i5_absorbance_clean(cond: dict[str, float]) -> np.ndarray:
    _, abs_300 = chem.cs3cu2i5_pl_clean(cond, 0.0)
    edge = 1.0 / (1.0 + np.exp((chem.WAVELENGTH_NM - 320.0) / 8.0))
    return abs_300 * edge / (1.0 / (1.0 + np.exp(-20.0 / 8.0)))


def absorbance_and_cd(
    sample: Sample, integration_ms: float, rng: np.random.Generator
) -> dict[str, Any]:
    """Absorbance and CD spectra (contract A shapes, lists) of a sample in the cuvette."""
    wl = chem.WAVELENGTH_NM
    absorb = np.zeros_like(wl)
    cd = np.zeros_like(wl)
    for comp in sample.components:
        if comp.conditions is None or comp.yield_factor <= 0.0:
            continue
        share = comp.weight * comp.yield_factor
        cond = comp.conditions
        if sample.chemistry == "cspbbr3":
            absorb += share * (chem.cspbbr3_absorbance_clean(cond["T"], cond["C"]) - 0.01)
            cd += share * chem.cspbbr3_cd_clean(
                cond["T"], cond["C"], sample.handedness, t_eff_C=cond["T"] + sample.t_shift_C
            )
        else:
            absorb += share * _cs3cu2i5_absorbance_clean(cond)
    scale = _noise_scale(integration_ms)
    absorb = (absorb + 0.01) * sample.gain
    absorb = absorb + rng.normal(0.0, chem.CSPBBR3_ABS_NOISE * scale, wl.shape)
    cd = cd * sample.gain + rng.normal(0.0, chem.CSPBBR3_CD_NOISE_MDEG * scale, wl.shape)
    saturated = absorb > chem.CSPBBR3_ABS_SATURATION
    if saturated.any():
        # A saturated detector reports its ceiling, and the CD there is meaningless.
        absorb = np.where(saturated, chem.CSPBBR3_ABS_SATURATION, absorb)
        cd = np.where(saturated, rng.normal(0.0, 1.0, wl.shape), cd)
    return {
        "wavelength_nm": wl.tolist(),
        "absorbance": absorb.tolist(),
        "cd_mdeg": cd.tolist(),
        "saturated": bool(saturated.any()),
    }


def _cspbbr3_pl_clean(cond: dict[str, float]) -> tuple[np.ndarray, float]:
    """CsPbBr3 platelets emit just to the red of their exciton (small Stokes shift)."""
    absorb = chem.cspbbr3_absorbance_clean(cond["T"], cond["C"])
    abs_300 = float(absorb[0])
    emission = 5.0e3 * (1.0 - 10.0 ** (-abs_300))
    ex = float(chem.cspbbr3_exciton_nm(cond["T"], cond["C"]))
    return emission * np.exp(-0.5 * ((chem.WAVELENGTH_NM - ex - 6.0) / 8.0) ** 2), abs_300


def photoluminescence(
    sample: Sample, integration_ms: float, excitation_nm: float, rng: np.random.Generator
) -> dict[str, Any]:
    """PL spectrum of the in-line flow cell's content (contract A ``spectrometer.pl`` shape).

    The model is for 300 nm excitation; other wavelengths scale the emission by the product's
    relative absorbance there (excitation must lie in 250-420 nm).
    """
    wl = chem.WAVELENGTH_NM
    intensity = np.zeros_like(wl)
    abs_300 = 0.0
    for comp in sample.components:
        if comp.conditions is None or comp.yield_factor <= 0.0:
            continue
        share = comp.weight * comp.yield_factor
        if sample.chemistry == "cspbbr3":
            spec, a300 = _cspbbr3_pl_clean(comp.conditions)
        else:
            spec, a300 = chem.cs3cu2i5_pl_clean(comp.conditions)
        intensity += share * spec
        abs_300 += share * a300
    # Absorbance falls off towards the band edge: fewer photons absorbed at longer excitation.
    exc_factor = float(1.0 / (1.0 + np.exp((excitation_nm - 330.0) / 15.0)))
    exc_factor /= 1.0 / (1.0 + np.exp((300.0 - 330.0) / 15.0))
    counts = intensity * sample.gain * exc_factor * integration_ms / 100.0
    noise_sd = chem.PL_READ_NOISE + 0.01 * np.sqrt(np.abs(counts))
    counts = counts + rng.normal(0.0, 1.0, wl.shape) * noise_sd
    peak, area = chem.pl_metrics(counts)
    abs_meas = float(abs_300 * sample.gain + rng.normal(0.0, 0.002))
    # PLQY proxy (%): emission per absorbed photon, normalised to 300 nm excitation and 100 ms.
    plqy_proxy = chem.plqy_proxy_pct(peak / (exc_factor * integration_ms / 100.0), abs_meas)
    return {
        "wavelength_nm": wl.tolist(),
        "intensity": counts.tolist(),
        "abs_300nm": abs_meas,
        "pl_peak_intensity": peak,
        "pl_area": area,
        "plqy_proxy_pct": float(plqy_proxy),
    }

"""Chemistry and optics of the simulated lab: two response surfaces and their spectra.

Pure, deterministic functions (randomness only through the ``rng`` argument), vectorised with
numpy broadcasting where that costs nothing.

CsPbBr3 (chemistry "cspbbr3"), after the MAOSIC paper's Fig. 2:
    inputs T (°C, reactor temperature) in [90, 180] and C (mmol/mL of Cs+) in [0.2, 1.2];
    objective |CD| (mdeg) at the first exciton absorption peak.  Global optimum ~1.0 mdeg near
    (130 °C, 0.8 mmol/mL), a local optimum ~0.4 mdeg near (110 °C, 0.4 mmol/mL), weak CD above
    160 °C (cubic quantum dots take over), and at 130 °C |CD| proportional to C up to ~0.8
    mmol/mL and within ~5 % of the optimum from there to 1.0 mmol/mL (the paper's "roughly
    proportional up to 1.0 mmol/mL" read together with its optimum near 0.8), falling beyond.

Cs3Cu2I5 with a ZnI2 additive (chemistry "cs3cu2i5"), after the self-driving fluidic lab papers:
    inputs T (°C) in [120, 180] and four stream flow rates (uL/min) q_CuI, q_ZnI2, q_CsOA, q_ODE
    whose box bounds make the total 600-900 uL/min everywhere in the box;
    objective a PLQY proxy (%) with best value ~31 %, random search reaching ~17 % in 16 tries;
    PLQY rises with T, falls with Cs-oleate, rises with CuI and ZnI2, ODE hardly matters (the
    papers' SHAP signs and order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ArrayLike = float | np.ndarray

# Spectra are sampled on one fixed grid so that every spectrum has the same shape (cheap, and the
# analyzer can rely on it).
WAVELENGTH_NM: np.ndarray = np.arange(300.0, 700.0 + 0.5, 1.0)
WAVELENGTH_NM.setflags(write=False)


@dataclass(frozen=True)
class SearchSpace:
    """A box search space: parameter names, bounds, grid resolution and units.

    Also readable like a mapping (``space["lower"]``) so that callers written against a dict work.
    """

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    resolution: tuple[float, ...]
    units: tuple[str, ...]

    def __getitem__(self, key: str) -> Any:
        table = {
            "names": self.names,
            "lower": self.lower,
            "upper": self.upper,
            "resolution": self.resolution,
            "units": self.units,
        }
        if key not in table:
            raise KeyError(f"SearchSpace has no field {key!r}; fields are {sorted(table)}")
        return table[key]

    def as_dict(self) -> dict[str, list[Any]]:
        """JSON-friendly copy: {"names": [...], "lower": [...], ...}."""
        return {
            "names": list(self.names),
            "lower": list(self.lower),
            "upper": list(self.upper),
            "resolution": list(self.resolution),
            "units": list(self.units),
        }

    def contains(self, point: Mapping[str, float]) -> bool:
        """True when every named coordinate of ``point`` lies within its bounds."""
        return all(
            lo <= float(point[n]) <= hi
            for n, lo, hi in zip(self.names, self.lower, self.upper, strict=True)
        )


# ----------------------------------------------------------------------------------------------
# CsPbBr3: |CD| landscape over (T, C)
# ----------------------------------------------------------------------------------------------

CSPBBR3_SPACE = SearchSpace(
    names=("T", "C"),
    lower=(90.0, 0.2),
    upper=(180.0, 1.2),
    resolution=(0.5, 0.01),
    units=("°C", "mmol/mL"),
)

# Shape constants.  The global ridge: its best temperature drifts with C (hotter for richer
# precursor), which makes the landscape non-separable like the paper's tilted Fig. 2a basin.
_G_AMP = 1.26123  # mdeg, scaled so the global maximum is 1.00 mdeg
_G_T0 = 130.0  # °C, ridge temperature at C = _G_C0
_G_C0 = 0.8  # mmol/mL
_G_TILT = 8.0  # °C per mmol/mL: ridge temperature drift with C
_G_SIG_T_LOW = 9.0  # °C, ridge width on the cold side
_G_SIG_T_HIGH = 15.0  # °C, ridge width on the hot side
# |CD| grows in proportion to C until the product's own growth saturates near 0.8 mmol/mL
# (a soft minimum of C and a gently falling plateau, so the optimum stays near 0.8 and |CD| is
# still within ~3 % of it at 1.0 mmol/mL), and falls beyond 1.0 mmol/mL (aggregation).
_G_C_PLATEAU = 0.79  # mmol/mL: plateau height, in the units of C, at C = 0.8
_G_C_PLATEAU_SLOPE = 0.25  # relative fall of the plateau per mmol/mL
_G_C_SOFTMIN = 30.0  # exponent of the soft minimum: larger, sharper corner
_G_C_FALL = 1.0  # mmol/mL: above this, aggregation removes chiral platelets
_G_C_FALL_W = 0.3  # mmol/mL: Gaussian width of that fall
# The local optimum: a separate, narrower family of chiral platelets at low T and C.
_L_AMP = 0.31218  # mdeg, scaled so the local maximum is 0.394 mdeg
_L_T0 = 108.6  # °C
_L_C0 = 0.4  # mmol/mL
_L_SIG_T = 4.5  # °C
_L_SIG_C = 0.08  # mmol/mL
# Above ~160 °C cubic (achiral) quantum dots dominate: a logistic cut on everything chiral.
_HOT_T = 162.0  # °C
_HOT_W = 3.0  # °C
# A small chiral background so that |CD| is never exactly zero (ligand-induced CD).
_BG_PER_C = 0.02  # mdeg per mmol/mL


def _concentration_shape(c: np.ndarray) -> np.ndarray:
    """Linear growth in C, a plateau from ~0.8 to 1.0 mmol/mL, then a fall."""
    c = np.maximum(c, 1e-9)
    plateau = _G_C_PLATEAU * (1.0 - _G_C_PLATEAU_SLOPE * (c - _G_C0))
    soft_min = (c**-_G_C_SOFTMIN + plateau**-_G_C_SOFTMIN) ** (-1.0 / _G_C_SOFTMIN)
    excess = np.maximum(c - _G_C_FALL, 0.0)
    return soft_min * np.exp(-0.5 * (excess / _G_C_FALL_W) ** 2)


def _hot_cut(t: np.ndarray) -> np.ndarray:
    """Fraction of the product that is still chiral platelets (1 cold, 0 hot)."""
    return 1.0 / (1.0 + np.exp((t - _HOT_T) / _HOT_W))


def cspbbr3_cubic_fraction(T_C: ArrayLike) -> ArrayLike:
    """Fraction (0..1) of the product that is achiral cubic quantum dots at T (°C)."""
    return 1.0 - _hot_cut(np.asarray(T_C, dtype=float))


def cspbbr3_cd_truth(T_C: ArrayLike, C_mmol_mL: ArrayLike) -> ArrayLike:
    """Noise-free |CD| (mdeg) at the first exciton absorption peak for T (°C), C (mmol/mL).

    Broadcasts over arrays; returns a float for scalar inputs.  Defined (and smooth) outside the
    search box too, so a sample made under a drifting temperature can be evaluated.
    """
    t = np.asarray(T_C, dtype=float)
    c = np.asarray(C_mmol_mL, dtype=float)
    ridge_t = _G_T0 + _G_TILT * (c - _G_C0)
    dt = t - ridge_t
    sig = np.where(dt < 0.0, _G_SIG_T_LOW, _G_SIG_T_HIGH)
    glob = _G_AMP * _concentration_shape(c) * np.exp(-0.5 * (dt / sig) ** 2)
    local = _L_AMP * np.exp(
        -0.5 * ((t - _L_T0) / _L_SIG_T) ** 2 - 0.5 * ((c - _L_C0) / _L_SIG_C) ** 2
    )
    value = (glob + local + _BG_PER_C * np.clip(c, 0.0, None)) * _hot_cut(t)
    if value.ndim == 0:
        return float(value)
    return value


# Found once with scipy.optimize (Nelder-Mead from the 0.5 °C x 0.01 grid maximum; re-derived by
# tests/sim/test_chemistry.py) and stored.
CSPBBR3_OPTIMUM: tuple[tuple[float, float], float] = ((130.232, 0.8291), 1.0000)
CSPBBR3_LOCAL_OPTIMUM: tuple[tuple[float, float], float] = ((109.798, 0.4019), 0.3941)

# Noise model (issue 5 item 3).
CSPBBR3_T_RIPPLE_C = 0.3  # °C, standard deviation of the heater ripple seen by the product
CSPBBR3_SAMPLE_CV = 0.01  # relative sample-to-sample repeatability (like the absorbance)
CSPBBR3_CD_NOISE_MDEG = 0.03  # CD spectrometer noise floor, standard deviation per point
CSPBBR3_ABS_NOISE = 0.002  # absorbance read noise, absolute per point
CSPBBR3_ABS_SATURATION = 2.0  # absorbance above which the CD spectrometer's detector saturates


def cspbbr3_cd_noisy(T_C: float, C_mmol_mL: float, rng: np.random.Generator) -> float:
    """One measured |CD| (mdeg) at the first exciton peak: ripple, repeatability, noise floor.

    The sign of a single measurement is random (random handedness); only |CD| is returned.
    """
    t_eff = float(T_C) + rng.normal(0.0, CSPBBR3_T_RIPPLE_C)
    signal = float(cspbbr3_cd_truth(t_eff, C_mmol_mL))
    signal *= 1.0 + rng.normal(0.0, CSPBBR3_SAMPLE_CV)
    return abs(signal + rng.normal(0.0, CSPBBR3_CD_NOISE_MDEG))


@dataclass(frozen=True)
class CsPbBr3Realism:
    """How far a CsPbBr3 measurement departs from the truth (one setting of the twin).

    t_ripple_C: heater ripple seen by the product (°C, sd); sample_cv: run-to-run variation of
    the product (relative sd); cd_noise_mdeg: spectrometer noise at the exciton (mdeg, sd);
    day_gain_cv: a day's precursor batch and instrument calibration scale every |CD| of that day
    (relative sd); day_t_offset_C: a day's thermocouple/block offset (°C, sd); loops_per_day:
    experiments per day (0: one day, no drift); failure_rate: share of syntheses that fail
    (clogged line, bubble in the cuvette: nothing chiral is measured).
    """

    t_ripple_C: float = CSPBBR3_T_RIPPLE_C
    sample_cv: float = CSPBBR3_SAMPLE_CV
    cd_noise_mdeg: float = CSPBBR3_CD_NOISE_MDEG
    day_gain_cv: float = 0.0
    day_t_offset_C: float = 0.0
    loops_per_day: int = 0
    failure_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("t_ripple_C", "sample_cv", "cd_noise_mdeg", "day_gain_cv", "day_t_offset_C"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"CsPbBr3Realism: {name} must be >= 0, got {getattr(self, name)}")
        if self.loops_per_day < 0:
            raise ValueError(
                f"CsPbBr3Realism: loops_per_day must be >= 0, got {self.loops_per_day}"
            )
        if not 0.0 <= self.failure_rate < 1.0:
            raise ValueError(
                f"CsPbBr3Realism: failure_rate must be in [0, 1), got {self.failure_rate}"
            )


# "ideal": the twin as the tests and the default simulated lab measure it (noise of one good
# instrument on one day).  "paper": what a real lab adds over a ~120-loop campaign (~2 min a loop,
# about four hours of synthesis a day): the fluidic-lab papers measured 1-5 % run-to-run
# variation (5 % here, the upper end, for hand-made Cs-oleate that ages), 0.1 mdeg of noise on
# |CD| read at the exciton (a 100 ms in-flow reading of a ~1 mdeg signal), a new precursor batch
# and re-calibration each day (5 % gain, 1 °C offset), and one synthesis in twenty that yields
# nothing.  docs/simulated_lab.md gives the reasoning and what SNOBFIT needs under it
# (scripts/twin_paper_mode.py).
CSPBBR3_REALISM: dict[str, CsPbBr3Realism] = {
    "ideal": CsPbBr3Realism(),
    "paper": CsPbBr3Realism(
        t_ripple_C=0.5,
        sample_cv=0.05,
        cd_noise_mdeg=0.1,
        day_gain_cv=0.05,
        day_t_offset_C=1.0,
        loops_per_day=120,
        failure_rate=0.05,
    ),
}


class CsPbBr3Lab:
    """A series of CsPbBr3 measurements under one realism setting: it counts experiments, so
    that day-to-day drift and failed syntheses follow the campaign as in a real lab.

    ``measure(T, C)`` returns one measured |CD| (mdeg) at the first exciton; the noise draws come
    from ``rng`` (deterministic under a seed).  ``day`` is the current day (0-based).
    """

    def __init__(self, realism: CsPbBr3Realism | str, rng: np.random.Generator) -> None:
        if isinstance(realism, str):
            if realism not in CSPBBR3_REALISM:
                raise ValueError(
                    f"CsPbBr3Lab: unknown realism {realism!r}; known: {sorted(CSPBBR3_REALISM)}"
                )
            realism = CSPBBR3_REALISM[realism]
        self.realism = realism
        self._rng = rng
        self.count = 0
        self._day = -1
        self._day_gain = 1.0
        self._day_offset_C = 0.0

    @property
    def day(self) -> int:
        per_day = self.realism.loops_per_day
        return 0 if per_day == 0 else self.count // per_day

    def _new_day_if_due(self) -> None:
        if self.day != self._day:
            self._day = self.day
            r = self.realism
            self._day_gain = max(1.0 + self._rng.normal(0.0, r.day_gain_cv), 0.0)
            self._day_offset_C = self._rng.normal(0.0, r.day_t_offset_C)

    def measure(self, T_C: float, C_mmol_mL: float) -> float:
        self._new_day_if_due()
        r = self.realism
        self.count += 1
        failed = self._rng.random() < r.failure_rate
        t_eff = float(T_C) + self._day_offset_C + self._rng.normal(0.0, r.t_ripple_C)
        signal = 0.0 if failed else float(cspbbr3_cd_truth(t_eff, C_mmol_mL))
        signal *= self._day_gain * (1.0 + self._rng.normal(0.0, r.sample_cv))
        return abs(signal + self._rng.normal(0.0, r.cd_noise_mdeg))


def cspbbr3_exciton_nm(T_C: ArrayLike, C_mmol_mL: ArrayLike) -> ArrayLike:
    """First exciton absorption peak (nm) of the chiral platelets: ~450 nm at the optimum.

    Hotter growth gives thicker platelets (red shift); richer precursor slightly thinner ones.
    """
    t = np.asarray(T_C, dtype=float)
    c = np.asarray(C_mmol_mL, dtype=float)
    value = 450.0 + 0.35 * (t - _G_T0) - 6.0 * (c - _G_C0)
    if value.ndim == 0:
        return float(value)
    return value


_EXCITON_WIDTH_NM = 8.0  # Gaussian sigma of the platelet exciton band
_CUBIC_EXCITON_NM = 505.0  # cubic CsPbBr3 quantum dots
_CUBIC_WIDTH_NM = 12.0
_COTTON_SPLIT_NM = 24.0  # the negative lobe sits this far to the blue of the positive one
_COTTON_RATIO = 0.7  # negative lobe amplitude relative to the positive one
_COTTON_WIDTH_NM = 10.0


def _gauss(x: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - centre) / sigma) ** 2)


def cspbbr3_absorbance_clean(T_C: float, C_mmol_mL: float) -> np.ndarray:
    """Noise-free absorbance on WAVELENGTH_NM: platelet and cubic excitons, band edge, scattering.

    Scaled so that the CD spectrometer's detector saturates (A > 2) in the UV at high C.
    """
    c = max(float(C_mmol_mL), 0.0)
    cubic = float(cspbbr3_cubic_fraction(T_C))
    ex = float(cspbbr3_exciton_nm(T_C, C_mmol_mL))
    wl = WAVELENGTH_NM
    amount = c / _G_C0  # product amount relative to the optimum's
    # Interband continuum sets in well to the blue of the exciton, so the exciton stands out as
    # a clear local maximum (the analyzer's "first exciton absorption peak").
    platelet = (1.0 - cubic) * (
        0.6 * _gauss(wl, ex, _EXCITON_WIDTH_NM) + 1.2 / (1.0 + np.exp((wl - (ex - 45.0)) / 10.0))
    )
    qd = cubic * (
        0.45 * _gauss(wl, _CUBIC_EXCITON_NM, _CUBIC_WIDTH_NM)
        + 1.2 / (1.0 + np.exp((wl - (_CUBIC_EXCITON_NM - 40.0)) / 10.0))
    )
    scattering = 0.12 * (400.0 / wl) ** 4  # Rayleigh-like, from aggregates
    return amount * (platelet + qd + scattering) + 0.01


def cspbbr3_cd_clean(
    T_C: float, C_mmol_mL: float, handedness: int = 1, t_eff_C: float | None = None
) -> np.ndarray:
    """Noise-free CD spectrum (mdeg) on WAVELENGTH_NM: a bisignate Cotton couplet.

    The positive lobe is centred on the exciton and scaled so that CD at the exciton is exactly
    handedness x cspbbr3_cd_truth; the negative lobe sits to the blue.
    """
    t_for_cd = float(T_C) if t_eff_C is None else float(t_eff_C)
    ex = float(cspbbr3_exciton_nm(T_C, C_mmol_mL))
    value = float(cspbbr3_cd_truth(t_for_cd, C_mmol_mL))
    wl = WAVELENGTH_NM
    neg_at_ex = _COTTON_RATIO * float(np.exp(-0.5 * (_COTTON_SPLIT_NM / _COTTON_WIDTH_NM) ** 2))
    amp = value / (1.0 - neg_at_ex)
    shape = _gauss(wl, ex, _COTTON_WIDTH_NM) - _COTTON_RATIO * _gauss(
        wl, ex - _COTTON_SPLIT_NM, _COTTON_WIDTH_NM
    )
    return handedness * amp * shape


def cspbbr3_spectra(
    T_C: float,
    C_mmol_mL: float,
    rng: np.random.Generator,
    handedness: int | None = None,
) -> dict[str, Any]:
    """A measured absorbance + CD spectrum of the product made at (T °C, C mmol/mL).

    Returns {"wavelength_nm" (nm, 300-700, 1 nm step), "absorbance", "cd_mdeg", "exciton_nm",
    "handedness" (+1/-1), "saturated" (bool: A > 2 somewhere, CD there is garbage)}.
    ``handedness`` None draws it at random, as each real sample's is.
    """
    if handedness is None:
        hand = 1 if rng.random() < 0.5 else -1
    elif handedness in (1, -1):
        hand = int(handedness)
    else:
        raise ValueError(f"cspbbr3_spectra: handedness must be +1, -1 or None, got {handedness!r}")
    t_eff = float(T_C) + rng.normal(0.0, CSPBBR3_T_RIPPLE_C)
    gain = 1.0 + rng.normal(0.0, CSPBBR3_SAMPLE_CV)
    absorbance = cspbbr3_absorbance_clean(T_C, C_mmol_mL) * gain
    absorbance = absorbance + rng.normal(0.0, CSPBBR3_ABS_NOISE, size=absorbance.shape)
    cd = cspbbr3_cd_clean(T_C, C_mmol_mL, hand, t_eff_C=t_eff) * gain
    cd = cd + rng.normal(0.0, CSPBBR3_CD_NOISE_MDEG, size=cd.shape)
    saturated_mask = absorbance > CSPBBR3_ABS_SATURATION
    if saturated_mask.any():
        # A saturated detector returns its ceiling and meaningless, large CD.
        absorbance = np.where(saturated_mask, CSPBBR3_ABS_SATURATION, absorbance)
        cd = np.where(saturated_mask, rng.normal(0.0, 1.0, size=cd.shape), cd)
    return {
        "wavelength_nm": WAVELENGTH_NM.copy(),
        "absorbance": absorbance,
        "cd_mdeg": cd,
        "exciton_nm": float(cspbbr3_exciton_nm(T_C, C_mmol_mL)),
        "handedness": hand,
        "saturated": bool(saturated_mask.any()),
    }


# ----------------------------------------------------------------------------------------------
# Cs3Cu2I5 with ZnI2: PLQY landscape over (T, q_CuI, q_ZnI2, q_CsOA, q_ODE)
# ----------------------------------------------------------------------------------------------

CS3CU2I5_KEYS: tuple[str, ...] = ("T", "q_CuI", "q_ZnI2", "q_CsOA", "q_ODE")

# Each stream's range is 75 uL/min wide and the lower (upper) bounds add up to 600 (900) uL/min,
# so every point of the box respects the reactor's 600-900 uL/min total flow.
CS3CU2I5_SPACE = SearchSpace(
    names=CS3CU2I5_KEYS,
    lower=(120.0, 100.0, 50.0, 100.0, 350.0),
    upper=(180.0, 175.0, 125.0, 175.0, 425.0),
    resolution=(1.0, 1.0, 1.0, 1.0, 1.0),
    units=("°C", "uL/min", "uL/min", "uL/min", "uL/min"),
)

_PL_PEAK_NM = 450.0  # Cs3Cu2I5 self-trapped exciton emission, fixed
_PL_SIGMA_NM = 32.0
_SIDE_UV_NM = 380.0  # CsCu2I3 / excess Cs-oleate side product
_SIDE_UV_SIGMA_NM = 14.0
_SIDE_RED_NM = 600.0  # low-temperature CuI-rich side product
_SIDE_RED_SIGMA_NM = 35.0

# PLQY model (after the self-driving fluidic lab papers' SHAP analysis of Cs3Cu2I5): PLQY rises
# with T over 120-180 °C, falls as Cs-oleate rises, rises with CuI and with ZnI2, and ODE (the
# diluent) has no significant effect; importance CsOA > T > CuI > ZnI2 > ODE.  A product of
# factors; docs/simulated_lab.md gives the reasoning, scripts/twin_effects.py the measured effects.
_Q_PLQY_MAX = 31.0  # %
_Q_T_BEST = 172.0  # °C: crystallinity improves with T; past ~172 °C the product starts to ripen
_Q_T_SIG = 18.0  # °C
# Cs excess over the iodide sources.  Excess Cs-oleate leaves Cs-rich side phases and free oleate
# that quench the emission; CuI and ZnI2 both bring iodide (ZnI2 half as much per uL at the
# stocks' concentrations).  The iodide side enters with a power below 1: extra CuI also makes
# weakly emissive CsCu2I3, so adding CuI helps less than removing Cs-oleate.
_Q_CS_REF_UL_MIN = 150.0  # uL/min, reference flow that makes the excess dimensionless
_Q_ZN_IODIDE = 0.5  # iodide of one uL of ZnI2 stock relative to one uL of CuI stock
_Q_IODIDE_POWER = 0.6
_Q_CS_EXCESS_BEST = 0.66  # near the low end of the box's range (0.51-1.26)
_Q_CS_EXCESS_SIG = 0.075  # width in ln(excess)
# ZnI2 passivates iodide vacancies: best at 14 % of the stream, half the PLQY without it.
_Q_ZN_FRAC_BEST = 0.14
_Q_ZN_FRAC_SIG = 0.022
_Q_ZN_FLOOR = 0.5
# Total flow sets the residence time (40-60 s at 900-600 uL/min); a weak optimum near 750 uL/min.
# ODE changes only the total flow, which is why its effect is insignificant.
_Q_TOTAL_BEST = 750.0  # uL/min
_Q_TOTAL_SIG = 200.0  # uL/min


def _as_cs3cu2i5_point(x: Mapping[str, Any]) -> dict[str, np.ndarray]:
    missing = [k for k in CS3CU2I5_KEYS if k not in x]
    if missing:
        raise KeyError(
            f"cs3cu2i5 input is missing {missing}; expected keys {list(CS3CU2I5_KEYS)} "
            "(T in °C, flows in uL/min)"
        )
    return {k: np.asarray(x[k], dtype=float) for k in CS3CU2I5_KEYS}


def _cs3cu2i5_factors(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The dimensionless factors of the PLQY model and the product concentration."""
    t = p["T"]
    cu = np.maximum(p["q_CuI"], 1e-9)
    total = np.maximum(p["q_CuI"] + p["q_ZnI2"] + p["q_CsOA"] + p["q_ODE"], 1e-9)
    iodide = np.maximum(p["q_CuI"] + _Q_ZN_IODIDE * p["q_ZnI2"], 1e-9) / _Q_CS_REF_UL_MIN
    cs_excess = np.maximum(p["q_CsOA"], 1e-9) / _Q_CS_REF_UL_MIN / iodide**_Q_IODIDE_POWER
    zn_frac = p["q_ZnI2"] / total
    f_t = np.exp(-0.5 * ((t - _Q_T_BEST) / _Q_T_SIG) ** 2)
    f_cs = np.exp(-0.5 * (np.log(cs_excess / _Q_CS_EXCESS_BEST) / _Q_CS_EXCESS_SIG) ** 2)
    f_zn = _Q_ZN_FLOOR + (1.0 - _Q_ZN_FLOOR) * np.exp(
        -0.5 * ((zn_frac - _Q_ZN_FRAC_BEST) / _Q_ZN_FRAC_SIG) ** 2
    )
    f_res = np.exp(-0.5 * ((total - _Q_TOTAL_BEST) / _Q_TOTAL_SIG) ** 2)
    return {
        "T": f_t,
        "cs": f_cs,
        "zn": f_zn,
        "res": f_res,
        "cs_cu": p["q_CsOA"] / cu,
        "cu_frac": p["q_CuI"] / total,
        "total": total,
    }


def cs3cu2i5_plqy_truth(x: Mapping[str, Any]) -> ArrayLike:
    """Noise-free PLQY proxy (%) for x = {"T" (°C), "q_CuI", "q_ZnI2", "q_CsOA", "q_ODE" (uL/min)}.

    Broadcasts when the values are arrays; returns a float for scalars.
    """
    f = _cs3cu2i5_factors(_as_cs3cu2i5_point(x))
    value = _Q_PLQY_MAX * f["T"] * f["cs"] * f["zn"] * f["res"]
    if np.ndim(value) == 0:
        return float(value)
    return value


# Every factor of the model is 1 here (T 172 °C, Cs excess and ZnI2 fraction at their best,
# total 750 uL/min); re-derived by tests/sim/test_chemistry.py with multi-start L-BFGS-B.  The
# optima form a ridge (any q_CuI with q_CsOA and q_ODE following it); this is its middle point.
CS3CU2I5_OPTIMUM: tuple[dict[str, float], float] = (
    {"T": 172.0, "q_CuI": 137.5, "q_ZnI2": 105.0, "q_CsOA": 114.0861, "q_ODE": 393.4139},
    31.0,
)

CS3CU2I5_PLQY_CV = 0.03  # relative repeatability of the PLQY proxy
CS3CU2I5_PLQY_NOISE = 0.3  # % absolute
CS3CU2I5_T_RIPPLE_C = 0.3  # °C


def cs3cu2i5_plqy_noisy(x: Mapping[str, Any], rng: np.random.Generator) -> float:
    """One measured PLQY proxy (%): temperature ripple, repeatability and read noise."""
    p = dict(x)
    p["T"] = float(p["T"]) + rng.normal(0.0, CS3CU2I5_T_RIPPLE_C)
    value = float(cs3cu2i5_plqy_truth(p))
    value *= 1.0 + rng.normal(0.0, CS3CU2I5_PLQY_CV)
    return max(value + rng.normal(0.0, CS3CU2I5_PLQY_NOISE), 0.0)


PL_COUNTS_PER_PLQY = 4.0e4  # counts x nm of emission per % PLQY per absorbed fraction, 100 ms


def cs3cu2i5_pl_clean(x: Mapping[str, Any], plqy: float | None = None) -> tuple[np.ndarray, float]:
    """Noise-free PL spectrum (counts on WAVELENGTH_NM, 300 nm excitation) and Abs at 300 nm.

    ``plqy`` (%) defaults to the model's truth at x; pass a measured value to scale the emission.
    Emission peak fixed at 450 nm; a side peak near 380 nm grows with the Cs-oleate ratio, one
    near 600 nm appears below ~125 °C.
    """
    p = _as_cs3cu2i5_point(x)
    f = _cs3cu2i5_factors(p)
    if plqy is None:
        plqy = float(cs3cu2i5_plqy_truth(x))
    t = float(p["T"])
    # Absorbance at 300 nm ~ amount of Cu(I) halide product in the stream.
    abs_300 = float(2.2 * f["cu_frac"] / 0.2)
    absorbed = 1.0 - 10.0 ** (-abs_300)
    main_area = PL_COUNTS_PER_PLQY * absorbed * plqy  # counts x nm
    wl = WAVELENGTH_NM
    main = main_area / (_PL_SIGMA_NM * np.sqrt(2 * np.pi)) * _gauss(wl, _PL_PEAK_NM, _PL_SIGMA_NM)
    # Side products emit on their own account (not through the main PLQY): their peaks are
    # scaled to the main peak of a 10 % PLQY product of the same absorbance.
    side_ref = PL_COUNTS_PER_PLQY * absorbed * 10.0 / (_PL_SIGMA_NM * np.sqrt(2 * np.pi))
    uv_weight = 0.6 * max(float(f["cs_cu"]) - 0.9, 0.0)
    side_uv = uv_weight * side_ref * _gauss(wl, _SIDE_UV_NM, _SIDE_UV_SIGMA_NM)
    red_weight = 0.5 / (1.0 + np.exp((t - 122.0) / 3.0))
    side_red = red_weight * side_ref * _gauss(wl, _SIDE_RED_NM, _SIDE_RED_SIGMA_NM)
    return main + side_uv + side_red, abs_300


PL_READ_NOISE = 2.0  # counts, detector read noise per point at 100 ms
# Mean of the unit Gaussian main band over +-5 nm of its centre (pl_metrics' peak window).
_PEAK_MEAN_FACTOR = float(np.mean(np.exp(-0.5 * (np.arange(-5.0, 5.5, 1.0) / _PL_SIGMA_NM) ** 2)))


def pl_metrics(intensity: np.ndarray) -> tuple[float, float]:
    """(intensity at 450 nm in counts, area in counts x nm) of a PL spectrum on WAVELENGTH_NM.

    The peak intensity is the mean over 445-455 nm, which damps the read noise.
    """
    near = np.abs(WAVELENGTH_NM - _PL_PEAK_NM) <= 5.0
    area = float(np.sum(0.5 * (intensity[1:] + intensity[:-1]) * np.diff(WAVELENGTH_NM)))
    return float(np.mean(intensity[near])), area


def plqy_proxy_pct(peak_intensity: float, abs_300nm: float) -> float:
    """PLQY proxy (%) from the 450 nm peak (counts, 100 ms, 300 nm excitation) and Abs(300 nm).

    Uses the main band's known width so the side peaks at 380 and 600 nm do not inflate it.
    """
    absorbed = 1.0 - 10.0 ** (-max(abs_300nm, 1e-6))
    area = peak_intensity * _PL_SIGMA_NM * np.sqrt(2 * np.pi) / _PEAK_MEAN_FACTOR
    return float(area / (PL_COUNTS_PER_PLQY * absorbed))


def cs3cu2i5_spectra(x: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Measured PL spectrum (300 nm excitation) and absorbance at 300 nm of the product at x.

    Returns {"wavelength_nm" (nm), "intensity" (counts), "abs_300nm", "plqy" (%, measured proxy),
    "pl_peak_intensity" (counts at 450 nm), "pl_area" (counts x nm)}.  Shape: cs3cu2i5_pl_clean.
    """
    plqy = cs3cu2i5_plqy_noisy(x, rng)
    clean, abs_300 = cs3cu2i5_pl_clean(x, plqy)
    abs_300 = max(abs_300 * (1.0 + rng.normal(0.0, 0.01)) + rng.normal(0.0, 0.002), 0.0)
    noise_sd = PL_READ_NOISE + 0.01 * np.sqrt(np.abs(clean))
    intensity = clean + rng.normal(0.0, 1.0, clean.shape) * noise_sd
    peak, area = pl_metrics(intensity)
    return {
        "wavelength_nm": WAVELENGTH_NM.copy(),
        "intensity": intensity,
        "abs_300nm": abs_300,
        "plqy": plqy,
        "pl_peak_intensity": peak,
        "pl_area": area,
    }

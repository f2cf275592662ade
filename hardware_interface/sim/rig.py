"""Constants of the simulated rigs (numbers from the MAOSIC paper's Methods unless marked).

CsPbBr3 rig (contract B of ARCHITECTURE.md): three syringe pumps (SP1 Cs-oleate, SP2 PbBr2,
SP3 ODE) into a cross junction and a coiled 1/32" ID PTFE tube on a PID-heated copper block.
Total flow is held at TOTAL_FLOW_ML_MIN so the residence time is constant; a target Cs+
concentration C (mmol/mL) maps to pump rates by ``cspbbr3_rates_mL_min``.

Cs3Cu2I5 rig (self-driving fluidic lab papers; sizes marked "assumed" are ours): four pumps
(CuI, ZnI2, Cs-oleate, ODE) at 600-900 uL/min total into a longer coil, PL read in-line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# --- Fluidics, CsPbBr3 rig --------------------------------------------------------------------
C_CS_STOCK = 3.6  # mmol/mL, Cs+ in the Cs-oleate stock
PB_STOCK = 3.6  # mmol/mL of PbBr2 solution (assumed; P1/P2 = 0.5 sets the Pb:Cs ratio to 2)
TOTAL_FLOW_ML_MIN = 0.15  # mL/min, P1 + P2 + P3, constant
TUBE_ID_MM = 25.4 / 32.0  # 1/32 inch inner diameter, in mm
TUBE_LENGTH_M = 0.25  # m of coil on the heater (assumed; gives ~2 min per loop like the paper)
# mm^2 x mm = uL; / 1000 -> mL
TUBE_VOLUME_ML = math.pi * (TUBE_ID_MM / 2.0) ** 2 * (TUBE_LENGTH_M * 1000.0) / 1000.0
RESIDENCE_TIME_S = TUBE_VOLUME_ML / TOTAL_FLOW_ML_MIN * 60.0  # ~49.5 s
EQUILIBRATION_S = 2.0 * RESIDENCE_TIME_S  # flow this long at stable T before a sample is valid
SYRINGE_ML = 0.5  # mL glass syringes
PUMP_MAX_RATE_ML_MIN = 5.0  # mL/min, fill/empty speed limit of the 0.5 mL syringes (assumed)
SAMPLE_ML = 0.06  # mL taken by the robot into the micro-cuvette at the sampler (assumed)
PL_CELL_ML = 0.01  # mL, in-line PL flow cell at the reactor outlet (assumed)
CSPBBR3_STOCK_ML: dict[str, float] = {"Cs-oleate": 20.0, "PbBr2": 40.0, "ODE": 100.0}
# Other names of the same stock bottles: the MAOSIC paper's configuration (Fig. S10) and the
# paper's generic reagent symbols in pump order (R1·SP1: a formula with no reagent list).
CSPBBR3_ALIASES: dict[str, tuple[str, ...]] = {
    "Cs-oleate": ("Cs-Precursor", "R1"),
    "PbBr2": ("Pb-Precursor", "R2"),
    "ODE": ("R3",),
}

# --- Fluidics, Cs3Cu2I5 rig (assumed sizes) ---------------------------------------------------
CS3CU2I5_TUBE_ID_MM = 25.4 / 16.0  # 1/16 inch ID
# 0.6 mL of coil: residence 40-60 s at the papers' 900-600 uL/min total flow.
CS3CU2I5_TUBE_LENGTH_M = 0.303
CS3CU2I5_TUBE_VOLUME_ML = (
    math.pi * (CS3CU2I5_TUBE_ID_MM / 2.0) ** 2 * (CS3CU2I5_TUBE_LENGTH_M * 1000.0) / 1000.0
)
# Axial dispersion in the coil (laminar flow at Re ~ 5-10, some Dean mixing in the turns): the
# residence-time distribution of 6 stirred tanks in series, so the outlet settles to within ~3 %
# of a new steady state about two residence times after the inlet changed, as the fluidic-lab
# papers waited (the CsPbBr3 rig's short 1/32" coil stays ideal plug flow).
CS3CU2I5_DISPERSION_TANKS = 6
CS3CU2I5_SYRINGE_ML = 10.0
CS3CU2I5_MAX_RATE_ML_MIN = 20.0
CS3CU2I5_STOCK_ML: dict[str, float] = {
    "CuI": 200.0,
    "ZnI2": 200.0,
    "Cs-oleate": 200.0,
    "ODE": 500.0,
}
# No R1..R4 here: the all-in-one start runs both rigs behind one queue, and a formula's bare
# R1 must find exactly one lab (the CsPbBr3 rig, as the README's formulas mean it).
CS3CU2I5_ALIASES: dict[str, tuple[str, ...]] = {"Cs-oleate": ("CsOA",)}
# Reagent -> the cs3cu2i5 model's input key of its flow rate.
CS3CU2I5_FLOW_KEYS: dict[str, str] = {
    "CuI": "q_CuI",
    "ZnI2": "q_ZnI2",
    "Cs-oleate": "q_CsOA",
    "ODE": "q_ODE",
}

# --- Heater: 100 W cartridge in a copper block, first-order lag, PID on the STM32 --------------
AMBIENT_C = 25.0  # °C
HEATER_POWER_W = 100.0  # W, cartridge
HEATER_HEAT_CAPACITY_J_K = 60.0  # J/K, ~150 g copper block plus cartridge (assumed)
HEATER_LOSS_W_K = 0.30  # W/K to the room (assumed; 46 W needed to hold 180 °C)
HEATER_TAU_S = HEATER_HEAT_CAPACITY_J_K / HEATER_LOSS_W_K  # open-loop time constant, 200 s
HEATER_MIN_C = 20.0  # °C, lowest setpoint
HEATER_MAX_C = 200.0  # °C, highest setpoint the rig accepts
HEATER_TRIP_C = 220.0  # °C, reading above this trips the firmware's over-temperature cut-out
HEATER_RAMP_MAX_C_MIN = 60.0  # °C/min
HEATER_DEFAULT_RAMP_C_MIN = 10.0  # °C/min
HEATER_PID_KP = 12.0  # %/K
HEATER_PID_KI = 0.06  # %/(K s)
HEATER_PID_KD = 20.0  # % s/K
HEATER_STEP_S = 0.5  # s, the firmware's control period (and the integration step)
HEATER_STABLE_BAND_C = 1.0  # °C, "stable" = within this band of the setpoint ...
HEATER_STABLE_WINDOW_S = 60.0  # s ... for this long
HEATER_RIPPLE_C = 0.3  # °C amplitude of the control ripple seen on the thermocouple
HEATER_RIPPLE_PERIOD_S = 17.0  # s, period of that ripple (PWM beating with the loop, assumed)

# --- Robot arm: travel times between named positions (s, assumed) -----------------------------
ROBOT_POSITIONS: tuple[str, ...] = ("home", "sampler", "abs", "cd", "waste")
ROBOT_MOVE_S: dict[frozenset[str], float] = {
    frozenset({"home", "sampler"}): 6.0,
    frozenset({"home", "abs"}): 6.0,
    frozenset({"home", "cd"}): 7.0,
    frozenset({"home", "waste"}): 5.0,
    frozenset({"sampler", "abs"}): 8.0,
    frozenset({"sampler", "cd"}): 10.0,
    frozenset({"sampler", "waste"}): 7.0,
    frozenset({"abs", "cd"}): 5.0,
    frozenset({"abs", "waste"}): 7.0,
    frozenset({"cd", "waste"}): 8.0,
}
ROBOT_GRIP_S = 3.0  # s to pick up or put down at the destination (fill, place, empty)

# --- Spectrometers -----------------------------------------------------------------------------
SPECTRUM_READOUT_S = 0.2  # s of overhead per acquisition on top of the integration time
INTEGRATION_MIN_MS = 1.0
INTEGRATION_MAX_MS = 10_000.0
VALVE_IDS: tuple[str, ...] = ("V1", "V2")


@dataclass(frozen=True)
class RigSpec:
    """What one chemistry's rig has: pumps, their default reagents, tube and syringes."""

    chemistry: str
    pump_reagents: dict[str, str]  # pump id -> reagent it is plumbed to
    syringe_mL: float
    max_rate_mL_min: float
    tube_volume_mL: float
    stock_mL: dict[str, float]
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # bottle -> other names
    dispersion_tanks: int = 0  # residence-time distribution: 0 plug flow, N tanks in series


RIGS: dict[str, RigSpec] = {
    "cspbbr3": RigSpec(
        chemistry="cspbbr3",
        pump_reagents={"SP1": "Cs-oleate", "SP2": "PbBr2", "SP3": "ODE"},
        syringe_mL=SYRINGE_ML,
        max_rate_mL_min=PUMP_MAX_RATE_ML_MIN,
        tube_volume_mL=TUBE_VOLUME_ML,
        stock_mL=CSPBBR3_STOCK_ML,
        aliases=CSPBBR3_ALIASES,
    ),
    "cs3cu2i5": RigSpec(
        chemistry="cs3cu2i5",
        pump_reagents={"SP1": "CuI", "SP2": "ZnI2", "SP3": "Cs-oleate", "SP4": "ODE"},
        syringe_mL=CS3CU2I5_SYRINGE_ML,
        max_rate_mL_min=CS3CU2I5_MAX_RATE_ML_MIN,
        tube_volume_mL=CS3CU2I5_TUBE_VOLUME_ML,
        stock_mL=CS3CU2I5_STOCK_ML,
        aliases=CS3CU2I5_ALIASES,
        dispersion_tanks=CS3CU2I5_DISPERSION_TANKS,
    ),
}

# Solute carried by each reagent, mmol/mL: Cs+ and Pb2+ for the CsPbBr3 model.
CS_PER_ML: dict[str, float] = {"Cs-oleate": C_CS_STOCK}
PB_PER_ML: dict[str, float] = {"PbBr2": PB_STOCK}


def cspbbr3_rates_mL_min(C_mmol_mL: float) -> tuple[float, float, float]:
    """Pump rates (mL/min) of SP1, SP2, SP3 that give Cs+ concentration C (mmol/mL).

    r1 = Q C / C_CS_STOCK, r2 = 2 r1 (P1/P2 = 0.5), r3 = Q - 3 r1, with Q = TOTAL_FLOW_ML_MIN.
    Valid for 0 <= C <= C_CS_STOCK / 3 (1.2 mmol/mL, where the ODE stream stops).
    """
    c_max = C_CS_STOCK / 3.0
    if not 0.0 <= C_mmol_mL <= c_max + 1e-12:
        raise ValueError(
            f"cspbbr3_rates_mL_min: C must be within [0, {c_max:.2f}] mmol/mL, got {C_mmol_mL!r}"
        )
    r1 = TOTAL_FLOW_ML_MIN * C_mmol_mL / C_CS_STOCK
    return r1, 2.0 * r1, max(TOTAL_FLOW_ML_MIN - 3.0 * r1, 0.0)


def cspbbr3_concentration(r1_mL_min: float, r2_mL_min: float, r3_mL_min: float) -> float:
    """Cs+ concentration (mmol/mL) at the cross junction for SP1..SP3 rates (mL/min)."""
    total = r1_mL_min + r2_mL_min + r3_mL_min
    if total <= 0.0:
        raise ValueError("cspbbr3_concentration: total flow must be > 0 mL/min")
    return C_CS_STOCK * r1_mL_min / total

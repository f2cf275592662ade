"""Syringe pumps, stock bottles and the reactor tube.

Every pump move is a record (start time, duration, signed rate), so a syringe's volume at any
instant is exact arithmetic; infusions into the reactor are kept as flow segments, from which
the tube tells which fluid left its outlet when, and under which flows it entered.  The tube is
ideal plug flow by default; with ``dispersion_tanks`` N > 0 its residence-time distribution is
that of N stirred tanks in series (a gamma distribution of mean 1 residence time, cut at its
99 % quantile), so a step in the inlet reaches the outlet spread over ~0.3-2 residence times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware_interface.sim.errors import BusyError, LimitError, ReagentError, UnknownModuleError

_EPS_ML = 1e-4  # mL (0.1 uL): volumes this close are equal (wire rounding, float round-off)
_RTD_POINTS = 12  # quadrature points of the residence-time distribution per outlet slice
_RTD_CUT = 0.99  # the distribution's tail beyond this quantile is folded back (renormalised)


def tanks_in_series_rtd(tanks: int, points: int = _RTD_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Residence times (in units of the mean residence time) and weights of ``tanks`` stirred
    tanks in series: ``points`` equal-probability slices of the gamma distribution (shape N,
    mean 1) up to its _RTD_CUT quantile, rescaled so that the weighted mean is exactly 1."""
    if tanks < 1:
        raise ValueError(f"tanks_in_series_rtd: tanks must be >= 1, got {tanks!r}")
    theta = np.linspace(0.0, 6.0, 6001)
    x = tanks * theta
    term = np.ones_like(x)
    series = np.ones_like(x)
    for k in range(1, tanks):
        term = term * x / k
        series = series + term
    cdf = 1.0 - np.exp(-x) * series
    probs = (np.arange(points) + 0.5) / points * _RTD_CUT
    slices = np.interp(probs, cdf, theta)
    slices = slices / slices.mean()
    return slices, np.full(points, 1.0 / points)


@dataclass
class _Move:
    start_s: float
    duration_s: float
    rate_mL_s: float  # > 0 fills the syringe (withdraw), < 0 empties it (infuse)
    reagent: str | None

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass
class Syringe:
    """One syringe pump: capacity (mL), content (mL of one reagent) and the move in progress."""

    pump: str
    capacity_mL: float
    max_rate_mL_min: float
    volume_mL: float = 0.0  # at the start of the move in progress (or now, when idle)
    reagent: str | None = None
    move: _Move | None = None

    def volume_at(self, now_s: float) -> float:
        if self.move is None:
            return self.volume_mL
        elapsed = min(max(now_s - self.move.start_s, 0.0), self.move.duration_s)
        return max(self.volume_mL + self.move.rate_mL_s * elapsed, 0.0)

    def busy(self, now_s: float) -> bool:
        return self.move is not None and now_s < self.move.end_s

    def settle(self, now_s: float) -> None:
        """Fold a finished move into the resting volume."""
        if self.move is not None and now_s >= self.move.end_s:
            self.volume_mL = self.volume_at(self.move.end_s)
            self.move = None
            if self.volume_mL <= _EPS_ML:
                self.volume_mL = 0.0


@dataclass
class FlowSegment:
    """Reagent ``reagent`` entering the reactor at ``rate_mL_s`` over [start_s, end_s)."""

    pump: str
    reagent: str
    start_s: float
    end_s: float
    rate_mL_s: float


@dataclass
class Parcel:
    """A slice of fluid that left the reactor: when it entered/left, its inlet flows (mL/min)."""

    volume_mL: float
    t_in_s: float
    t_out_s: float
    flows_mL_min: dict[str, float]  # reagent -> its flow rate at the junction when it entered
    prefill: bool = False  # the tube's initial solvent, no product


@dataclass
class Fluidics:
    """All pumps, the stock bottles and the reactor's flow history."""

    syringes: dict[str, Syringe]
    stock_mL: dict[str, float]
    tube_volume_mL: float
    segments: list[FlowSegment] = field(default_factory=list)
    dispersion_tanks: int = 0  # 0: ideal plug flow; N: N stirred tanks in series

    # Keep this many flow segments; older ones are long gone through the tube.
    MAX_SEGMENTS = 2000

    def syringe(self, pump: str) -> Syringe:
        if pump not in self.syringes:
            raise UnknownModuleError(pump, f"no such pump; pumps are {sorted(self.syringes)}")
        return self.syringes[pump]

    def start(
        self,
        now_s: float,
        pump: str,
        direction: str,
        volume_mL: float,
        rate_mL_min: float,
        reagent: str | None,
    ) -> float:
        """Start a move; returns its duration (s). Raises a SimLabError naming the pump."""
        syr = self.syringe(pump)
        syr.settle(now_s)
        if syr.busy(now_s):
            raise BusyError(pump, f"still moving until t={syr.move.end_s:.1f} s")  # type: ignore[union-attr]
        if direction not in ("infuse", "withdraw"):
            raise LimitError(pump, f"direction must be 'infuse' or 'withdraw', got {direction!r}")
        if not volume_mL > 0.0:
            raise LimitError(pump, f"volume_mL must be > 0, got {volume_mL!r}")
        if not 0.0 < rate_mL_min <= syr.max_rate_mL_min:
            raise LimitError(
                pump,
                f"rate_mL_min must be in (0, {syr.max_rate_mL_min}] mL/min, got {rate_mL_min!r}",
            )
        duration = volume_mL / rate_mL_min * 60.0
        if direction == "withdraw":
            self._check_withdraw(syr, volume_mL, reagent)
            assert reagent is not None
            # The checks allow _EPS_ML of slack; never go past the syringe or the bottle.
            volume_mL = min(volume_mL, syr.capacity_mL - syr.volume_mL, self.stock_mL[reagent])
            duration = volume_mL / rate_mL_min * 60.0
            self.stock_mL[reagent] -= volume_mL
            syr.reagent = reagent
            syr.move = _Move(now_s, duration, rate_mL_min / 60.0, reagent)
            return duration
        if volume_mL > syr.volume_mL + _EPS_ML:
            raise ReagentError(
                pump,
                f"cannot infuse {volume_mL:.4f} mL: the syringe holds {syr.volume_mL:.4f} mL"
                + (f" of {syr.reagent}" if syr.reagent else "")
                + "; fill it first",
            )
        if syr.reagent is None:
            raise ReagentError(pump, "the syringe is empty; fill it first")
        volume_mL = min(volume_mL, syr.volume_mL)  # within _EPS_ML
        duration = volume_mL / rate_mL_min * 60.0
        syr.move = _Move(now_s, duration, -rate_mL_min / 60.0, syr.reagent)
        self.segments.append(
            FlowSegment(pump, syr.reagent, now_s, now_s + duration, rate_mL_min / 60.0)
        )
        if len(self.segments) > self.MAX_SEGMENTS:
            del self.segments[: len(self.segments) - self.MAX_SEGMENTS]
        return duration

    def _check_withdraw(self, syr: Syringe, volume_mL: float, reagent: str | None) -> None:
        if reagent is None:
            raise ReagentError(syr.pump, "withdraw needs the reagent (stock bottle) to draw from")
        if reagent not in self.stock_mL:
            raise UnknownModuleError(
                syr.pump, f"no stock bottle of {reagent!r}; bottles are {sorted(self.stock_mL)}"
            )
        if syr.reagent not in (None, reagent) and syr.volume_mL > _EPS_ML:
            raise ReagentError(
                syr.pump,
                f"the syringe holds {syr.volume_mL:.4f} mL of {syr.reagent}; "
                f"empty it before drawing {reagent}",
            )
        if syr.volume_mL + volume_mL > syr.capacity_mL + _EPS_ML:
            raise LimitError(
                syr.pump,
                f"over-fill: {syr.volume_mL:.4f} mL + {volume_mL:.4f} mL exceeds the "
                f"{syr.capacity_mL} mL syringe",
            )
        if volume_mL > self.stock_mL[reagent] + _EPS_ML:
            raise ReagentError(
                syr.pump,
                f"stock bottle of {reagent} has only {self.stock_mL[reagent]:.3f} mL left, "
                f"{volume_mL:.4f} mL requested",
            )

    def stop(self, now_s: float, pump: str) -> None:
        """Stop the pump now: the move is cut short, unused stock goes back, flow ends."""
        syr = self.syringe(pump)
        move = syr.move
        if move is None or now_s >= move.end_s:
            syr.settle(now_s)
            return
        moved = abs(move.rate_mL_s) * max(now_s - move.start_s, 0.0)
        if move.rate_mL_s > 0.0 and move.reagent is not None:
            # The bottle was charged for the whole draw at the start.
            self.stock_mL[move.reagent] += move.rate_mL_s * move.duration_s - moved
        syr.volume_mL = syr.volume_at(now_s)
        syr.move = None
        for seg in reversed(self.segments):
            if seg.pump == pump and seg.end_s > now_s:
                seg.end_s = max(now_s, seg.start_s)

    # --- the plug-flow tube -------------------------------------------------------------------
    def _timeline(self, now_s: float) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """Breakpoints t[0..n], cumulative inlet volume V[0..n] (mL) and per-interval reagent
        rates R[n, k] (mL/s) of the kept flow history, closed at ``now_s``."""
        segs = [s for s in self.segments if s.start_s < now_s and s.end_s > s.start_s]
        reagents = sorted({s.reagent for s in segs})
        if not segs:
            return np.array([0.0, now_s]), np.zeros(2), reagents, np.zeros((1, 0))
        times = {now_s}
        for s in segs:
            times.add(s.start_s)
            times.add(min(s.end_s, now_s))
        t = np.array(sorted(x for x in times if x <= now_s))
        rates = np.zeros((len(t) - 1, len(reagents)))
        col = {r: i for i, r in enumerate(reagents)}
        for s in segs:
            a = np.searchsorted(t, s.start_s)
            b = np.searchsorted(t, min(s.end_s, now_s))
            rates[a:b, col[s.reagent]] += s.rate_mL_s
        dv = rates.sum(axis=1) * np.diff(t)
        cum = np.concatenate(([0.0], np.cumsum(dv)))
        return t, cum, reagents, rates

    def outlet_volume_mL(self, now_s: float) -> float:
        """Volume (mL) of fluid pumped in so far (since the kept history began)."""
        _, cum, _, _ = self._timeline(now_s)
        return float(cum[-1])

    def outlet_parcels(self, now_s: float, volume_mL: float, n: int = 8) -> list[Parcel]:
        """The last ``volume_mL`` that left the tube's outlet before ``now_s``, in n slices.

        Plug flow: fluid that entered when the cumulative inlet volume was v leaves when it
        reaches v + tube volume.  With dispersion each slice is a mixture of fluid that entered
        theta tube volumes earlier, theta over the residence-time distribution (one parcel per
        quadrature point).  Fluid from before any pumping is the priming solvent.
        """
        t, cum, reagents, rates = self._timeline(now_s)
        if self.dispersion_tanks > 0:
            thetas, weights = tanks_in_series_rtd(self.dispersion_tanks)
        else:
            thetas, weights = np.ones(1), np.ones(1)
        v_top = cum[-1] - self.tube_volume_mL  # entry volume of the fluid now at the outlet
        parcels: list[Parcel] = []
        dv = volume_mL / n
        for i in range(n):
            v_plug = v_top - (i + 0.5) * dv  # entry volume of this slice under plug flow
            t_out, _ = self._time_at_volume(t, cum, v_plug + self.tube_volume_mL)
            for theta, weight in zip(thetas, weights, strict=True):
                v = v_plug - (theta - 1.0) * self.tube_volume_mL if theta != 1.0 else v_plug
                if v < 0.0:
                    parcels.append(Parcel(dv * weight, now_s, now_s, {}, prefill=True))
                    continue
                t_in, k = self._time_at_volume(t, cum, v)
                flows = {r: float(rates[k, j]) * 60.0 for j, r in enumerate(reagents)}
                parcels.append(
                    Parcel(dv * weight, t_in, t_out, {r: q for r, q in flows.items() if q > 0})
                )
        return parcels

    @staticmethod
    def _time_at_volume(t: np.ndarray, cum: np.ndarray, v: float) -> tuple[float, int]:
        """Time at which the cumulative inlet volume reached v, and the flow interval index."""
        k = int(np.searchsorted(cum, v, side="left")) - 1
        k = min(max(k, 0), len(t) - 2)
        span = cum[k + 1] - cum[k]
        if span <= 0.0:
            return float(t[k]), k
        return float(t[k] + (v - cum[k]) / span * (t[k + 1] - t[k])), k

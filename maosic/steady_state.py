"""Steady state from data: in-situ readings during the flow until the signal is stable.

The fluidic-lab papers read their in-line cell until the signal stopped changing (about two
residence times) rather than trusting a fixed pumping time. A reaction configuration's
``steady_state`` (``tolerance_pct``, ``interval_s``, ``window``, ``max_readings``, ``start_s``;
checked in maosic/language/config.py) turns the plan's one in-situ reading into readings taken
while the pumps still run; :class:`SteadyRun` is their bookkeeping, and the campaign
(maosic/campaign.py, ``Campaign._steady_*``) sends the calls. Nothing here relies on what only
the simulator knows (its "equilibrated" flag): the readings alone decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from maosic.batching import HARMLESS_METHODS

STEADY_IDLE_CHECKS = 60  # 1 s waits for the pumps to report idle after their infusion's end
# The infusion calls whose flow in-situ readings watch, and the in-situ measurements.
FLOW_METHODS = ("pump.parallel", "pump.infuse")
IN_SITU_METHODS = ("spectrometer.pl",)


@dataclass
class SteadyRun:
    """One experiment's steady-state readings (the configuration's ``steady_state``).

    The plan's in-situ reading follows an infusion that waits for its end: the reading would
    see a stopped flow, whose cell no longer changes whether it was steady or not. So the
    infusion is started without waiting (``calls``, with a status read right after it for the
    flow's start on the lab clock) and the readings are taken while it runs: the first
    ``start_s`` after the flow started (default: half the pumping time, the first half
    flushing what the tube held before), then one every ``interval_s`` until the last
    ``window`` readings agree within ``tolerance_pct`` (relative spread of the reward-relevant
    signal), ``max_readings`` were taken or the next reading would fall after the flow's end.
    """

    options: dict[str, Any]
    signal: str  # the reading's key of the reward-relevant number
    calls: list[dict[str, Any]]  # the plan to send
    reading: dict[str, Any]  # the in-situ measurement call
    flow: dict[str, Any] | None = None  # the infusion before it, started without waiting
    flow_clock: dict[str, Any] | None = None  # a system.status read right after it
    pumps: list[str] = field(default_factory=list)
    flow_start_s: float | None = None  # lab clock at the infusion's start
    flow_s: float | None = None  # how long the infusion runs (the daemon's duration_s)
    values: list[float | None] = field(default_factory=list)
    clocks: list[float | None] = field(default_factory=list)
    flow_ended: bool = False
    end_clock_s: float | None = None  # lab clock after the readings and the flow's end

    @classmethod
    def prepare(
        cls,
        plan: list[dict[str, Any]],
        options: dict[str, Any] | None,
        target: dict[str, Any],
        clock: dict[str, Any],
    ) -> SteadyRun | None:
        """The readings' bookkeeping for ``plan``; None without ``steady_state`` or without an
        in-situ measurement (a cuvette taken out of the flow does not change)."""
        if options is None:
            return None
        index = next((i for i, c in enumerate(plan) if c["method"] in IN_SITU_METHODS), None)
        if index is None:
            return None
        signal = "plqy_proxy_pct" if "plqy" in str(target).lower() else "pl_peak_intensity"
        calls = list(plan)
        run = cls(options=options, signal=signal, calls=calls, reading=calls[index])
        acting = [i for i in range(index) if calls[i]["method"] not in HARMLESS_METHODS]
        if acting and calls[acting[-1]]["method"] in FLOW_METHODS:
            before = calls[acting[-1]]
            params = before["params"]
            if params.get("wait", True):
                run.flow = {"method": before["method"], "params": {**params, "wait": False}}
                run.flow_clock = dict(clock)  # another object: not the experiment's clocks
                calls[acting[-1]] = run.flow
                calls.insert(acting[-1] + 1, run.flow_clock)
                moves = params.get("moves") or [params]
                run.pumps = [str(move["pump"]) for move in moves if "pump" in move]
        return run

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def flow_end_s(self) -> float | None:
        if self.flow_start_s is None or self.flow_s is None:
            return None
        return self.flow_start_s + self.flow_s

    def note_result(self, call: dict[str, Any], result: Any) -> bool:
        """Take the infusion's duration and start from their results; True for the status
        read that is no plan step."""
        if call is self.flow and isinstance(result, dict):
            duration = result.get("duration_s")
            self.flow_s = float(duration) if isinstance(duration, int | float) else None
        if call is self.flow_clock:
            start = result.get("clock_s") if isinstance(result, dict) else None
            self.flow_start_s = float(start) if isinstance(start, int | float) else None
            return True
        return False

    def add(self, reading: dict[str, Any], clock_s: float | None) -> None:
        value = reading.get(self.signal) if isinstance(reading, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            counts = reading.get("intensity") if isinstance(reading, dict) else None
            value = max(counts) if isinstance(counts, list) and counts else None
        ok = isinstance(value, int | float) and math.isfinite(value)
        self.values.append(float(value) if ok else None)
        self.clocks.append(clock_s)

    def change_pct(self) -> float | None:
        """Relative spread (%) of the last ``window`` readings; None before a full window or
        with a missing or non-positive signal (solvent, nothing made yet)."""
        window = self.values[-self.options["window"] :]
        if len(window) < self.options["window"] or any(v is None for v in window):
            return None
        values = [float(v) for v in window if v is not None]
        mean = sum(values) / len(values)
        if mean <= 0.0:
            return None
        return (max(values) - min(values)) / mean * 100.0

    def stable(self) -> bool:
        change = self.change_pct()
        return change is not None and change <= self.options["tolerance_pct"]

    def record(self, reward: Any, result: dict[str, Any]) -> None:
        """The readings as features of the experiment; a note when it never got steady."""
        reached = self.stable()
        origin = self.flow_start_s if self.flow_start_s is not None else self.clocks[0]
        last = self.clocks[-1] if self.clocks else None
        took = last - origin if reached and last is not None and origin is not None else None
        reward.features["steady_state_s"] = took
        reward.features["steady_readings"] = self.count
        reward.features["steady_state_reached"] = 1.0 if reached else 0.0
        reward.features["steady_change_pct"] = self.change_pct()
        note = self.note()
        if note is not None:
            reward.flags.append(note)
            result["note"] = note

    def note(self) -> str | None:
        """What to say when the readings never got steady; None when they did."""
        if self.stable():
            return None
        change = self.change_pct()
        spread = "unknown" if change is None else f"{change:.3g}%"
        why = (
            "the flow ended"
            if self.flow_ended
            else f"max_readings ({self.options['max_readings']}) was reached"
        )
        return (
            f"not steady: {self.signal} changed by {spread} over the last "
            f"{self.options['window']} of {self.count} in-situ readings (tolerance "
            f"{self.options['tolerance_pct']:g}%) when {why}; the last reading was used"
        )

"""pump.*: fill from stock bottles, infuse into the reactor (alone or in parallel), stop, status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.errors import REAGENT, AppError
from hardware_interface.jsonrpc import INVALID_PARAMS, RpcError

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon


DEFAULT_FILL_RATE_ML_MIN = 1.0


class PumpMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def _pump_json(self, pump: str) -> dict[str, Any]:
        state = self.lab.call(pump, lambda d: d.status(), check_fault=False)
        dev = self.lab.config.devices[pump]
        return {
            "pump": pump,
            "volume_mL": round(state.volume_mL, 6),
            "capacity_mL": dev.capacity_mL,
            "reagent": dev.reagent if state.volume_mL > safety.VOLUME_SLACK_ML else None,
            "busy": state.busy,
            **self.lab.module_state(pump, state.busy),
        }

    def _wait_pumps(self, pumps: list[str], duration_s: float) -> None:
        def idle() -> bool:
            return not any(self.lab.call(p, lambda d: d.status().busy) for p in pumps)

        self.lab.wait_until(idle, duration_s, duration_s + 60.0, pumps[0], "pump idle")

    def _draw(self, pump: str, volume_mL: float, rate_mL_min: float, wait: bool) -> dict[str, Any]:
        """Withdraw from the pump's stock bottle, booking the volume against the ledger."""
        dev = self.lab.config.devices[pump]
        safety.check_rate(self.lab.limits, pump, rate_mL_min, dev.max_rate_mL_min)
        held = self.lab.call(pump, lambda d: d.status().volume_mL)
        safety.check_fill(pump, held, volume_mL, dev.capacity_mL)
        reagent = dev.reagent or ""
        with self.lab.ledger_lock:
            safety.check_stock(pump, reagent, self.lab.stock_mL.get(reagent, 0.0), volume_mL)
            duration = self.lab.call(pump, lambda d: d.withdraw(volume_mL, rate_mL_min))
            self.lab.stock_mL[reagent] = self.lab.stock_mL.get(reagent, 0.0) - volume_mL
            self.lab.save_stock()
        # Journalled as soon as the pump took the command, before waiting: a daemon killed
        # meanwhile still knows the syringe is (being) loaded when it restarts.
        self.lab.belief.note_syringe(pump, held + volume_mL, dev.reagent)
        if wait:
            self._wait_pumps([pump], duration)
        return {**self._pump_json(pump), "duration_s": duration}

    def pump_fill(
        self,
        pump: str,
        reagent: str,
        volume_mL: float,
        rate_mL_min: float = DEFAULT_FILL_RATE_ML_MIN,
    ) -> dict[str, Any]:
        """Draw `volume_mL` (mL) of `reagent` from its stock bottle at `rate_mL_min` (mL/min)."""
        pump = self.lab.pump_id(pump)
        plumbed = self.lab.config.devices[pump].reagent
        if self.lab.config.reagent_name(reagent) != plumbed:
            raise AppError(
                REAGENT,
                pump,
                f"{pump} draws {plumbed}, not {safety.shown(reagent)}",
                reagent=safety.module_name(reagent),
            )
        return self._draw(pump, volume_mL, rate_mL_min, wait=True)

    def pump_withdraw(
        self, pump: str, volume_mL: float, rate_mL_min: float, wait: bool = True
    ) -> dict[str, Any]:
        """Withdraw `volume_mL` (mL) from the pump's line at `rate_mL_min` (mL/min)."""
        return self._draw(self.lab.pump_id(pump), volume_mL, rate_mL_min, wait)

    def _check_reactor_ready(self) -> None:
        if self.lab.heater is None:
            return
        state = self.lab.heater_state()
        self.lab.faults.require_no_fault(self.lab.heater)
        safety.check_heater_ready(self.lab.limits, self.lab.heater, state.setpoint_C, state.stable)

    def pump_infuse(
        self, pump: str, volume_mL: float, rate_mL_min: float, wait: bool = True
    ) -> dict[str, Any]:
        """Push `volume_mL` (mL) into the reactor at `rate_mL_min` (mL/min)."""
        result = self.pump_parallel(
            [{"pump": pump, "volume_mL": volume_mL, "rate_mL_min": rate_mL_min}], wait
        )
        return {**result["pumps"][pump], "duration_s": result["duration_s"]}

    def pump_parallel(self, moves: list, wait: bool = True) -> dict[str, Any]:
        """Infuse with several pumps at once; all moves are checked before any pump starts.

        moves: [{"pump": id, "volume_mL": mL, "rate_mL_min": mL/min}, ...]
        """
        checked: list[tuple[str, float, float]] = []
        for i, move in enumerate(moves):
            if not isinstance(move, dict) or set(move) != {"pump", "volume_mL", "rate_mL_min"}:
                raise RpcError(INVALID_PARAMS, "Invalid params",
                               f"moves[{i}] must be {{pump, volume_mL, rate_mL_min}}")  # fmt: skip
            volume, rate = move["volume_mL"], move["rate_mL_min"]
            if not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in (volume, rate)
            ):
                raise RpcError(INVALID_PARAMS, "Invalid params", f"moves[{i}]: numbers expected")
            pump = self.lab.pump_id(str(move["pump"]))
            if any(pump == c[0] for c in checked):
                raise RpcError(INVALID_PARAMS, "Invalid params", f"moves[{i}]: {pump} twice")
            checked.append((pump, float(volume), float(rate)))
        if not checked:
            raise RpcError(INVALID_PARAMS, "Invalid params", "moves is empty")
        held: dict[str, float] = {}
        for pump, volume, rate in checked:
            self.lab.faults.require_no_fault(pump)
            safety.check_rate(
                self.lab.limits, pump, rate, self.lab.config.devices[pump].max_rate_mL_min
            )
            held[pump] = self.lab.call(pump, lambda d: d.status().volume_mL)
            safety.check_infuse(pump, held[pump], volume)
        self._check_reactor_ready()
        durations: dict[str, float] = {}
        try:
            for pump, volume, rate in checked:
                durations[pump] = self.lab.call(pump, lambda d, v=volume, r=rate: d.infuse(v, r))
                self.lab.belief.note_syringe(pump, held[pump] - volume, self._content(pump))
        except RpcError:
            for started in durations:  # all or nothing: halt the pumps already running
                self.lab.call(started, lambda d: d.stop(), check_fault=False)
                self._note_reading(started)
            raise
        longest = max(durations.values())
        if wait:
            self._wait_pumps(list(durations), longest)
        return {"duration_s": longest, "pumps": {p: self._pump_json(p) for p in durations}}

    def pump_stop(self, pump: str) -> dict[str, Any]:
        pump = self.lab.pump_id(pump)
        self.lab.call(pump, lambda d: d.stop(), check_fault=False)
        state = self._pump_json(pump)
        # Stopping does not empty the syringe: it holds what the pump reports now.
        self.lab.belief.note_syringe(pump, state["volume_mL"], self._content(pump))
        return state

    def _content(self, pump: str) -> str | None:
        """The reagent in the pump's syringe: the journal's, else the one it is plumbed to."""
        known = self.lab.belief.current().syringes.get(pump)
        if known is not None and known.reagent:
            return known.reagent
        return self.lab.config.devices[pump].reagent

    def _note_reading(self, pump: str) -> None:
        """Journal what a stopped pump holds; a failed read leaves it to the next reconcile."""
        try:
            volume = self.lab.call(pump, lambda d: d.status().volume_mL, check_fault=False)
        except RpcError:
            return
        self.lab.belief.note_syringe(pump, volume, self._content(pump))

    def pump_status(self, pump: str) -> dict[str, Any]:
        """{"pump", "volume_mL", "capacity_mL", "reagent", "busy", "state", "fault"}."""
        return self._pump_json(self.lab.pump_id(pump))

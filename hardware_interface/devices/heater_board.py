"""Driver of the MAOSIC STM32 heater board (model MHB-1): PID-controlled copper block, 100 W
cartridge, K-type thermocouple, plus a peristaltic pump stepper channel."""

from __future__ import annotations

from hardware_interface.devices.base import DeviceError, GarbledReply, LineDevice, check_range
from hardware_interface.devices.capabilities import HeaterState
from hardware_interface.devices.protocol import fmt
from hardware_interface.transports import Transport

MODEL = "MHB1"
SETPOINT_MIN_C = 20.0
SETPOINT_MAX_C = 250.0  # the board's own hard ceiling; the daemon's safety ceiling is lower
RAMP_MIN_C_MIN = 0.1
RAMP_MAX_C_MIN = 60.0
GAIN_MAX = 1000.0
PERISTALTIC_MAX_RPM = 100.0


class HeaterBoard(LineDevice):
    """The STM32 heater board. Temperatures in °C with one decimal, ramp in °C/min.

    Command table (request words -> reply words after OK):
        ID                  -> MHB1 <firmware>
        TSP <C>             -> (none)     setpoint; turns the heater on
        RMP <C/min>         -> (none)     setpoint ramp rate
        OFF                 -> (none)     heater power off, setpoint cleared
        TMP                 -> <T_C> <setpoint_C|OFF> <power_pct> <stable 0|1> <trip 0|1>
        PID <kp> <ki> <kd>  -> (none)     gains, %/K, %/(K s), % s/K
        GPD                 -> <kp> <ki> <kd>
        PER <rpm>           -> (none)     peristaltic pump speed, signed; 0 stops it
        PRS                 -> <rpm>
    The firmware trips (power off, trip flag 1) on a thermocouple reading above its own ceiling;
    while tripped, TSP answers ER 6 until OFF is sent.
    Errors: ER 3 out of range, ER 6 hardware fault (tripped, thermocouple open).
    """

    def __init__(
        self, transport: Transport, name: str = "heater", timeout_s: float = 1.0, retries: int = 2
    ) -> None:
        super().__init__(transport, name, timeout_s, retries)

    def set_setpoint(self, setpoint_C: float) -> None:
        check_range(self.name, "setpoint_C", setpoint_C, SETPOINT_MIN_C, SETPOINT_MAX_C, "°C")
        self._query("TSP", fmt(setpoint_C))

    def set_ramp(self, ramp_C_min: float) -> None:
        check_range(self.name, "ramp_C_min", ramp_C_min, RAMP_MIN_C_MIN, RAMP_MAX_C_MIN, "°C/min")
        self._query("RMP", fmt(ramp_C_min, 2))

    def off(self) -> None:
        self._query("OFF")

    def stop(self) -> None:
        """Safe state: heater power off and the peristaltic pump stopped.

        Both commands are always sent, so a refused or lost OFF still stops the pump; the first
        failure is raised afterwards."""
        first: DeviceError | None = None
        for command in (("OFF",), ("PER", fmt(0.0))):
            try:
                self._query(*command)
            except DeviceError as exc:
                first = exc if first is None else first
        if first is not None:
            raise first

    def status(self) -> HeaterState:
        words = self._query("TMP")
        if len(words) < 5 or words[3] not in ("0", "1") or words[4] not in ("0", "1"):
            raise GarbledReply(self.name, f"TMP reply {words} has not 5 valid fields")
        temperature = self._floats(words, 1, "TMP")[0]
        setpoint = None if words[1] == "OFF" else self._floats(words[1:], 1, "TMP")[0]
        power = self._floats(words[2:], 1, "TMP")[0]
        return HeaterState(temperature, setpoint, power, words[3] == "1", words[4] == "1")

    def set_pid(self, kp: float, ki: float, kd: float) -> None:
        for label, gain in (("kp", kp), ("ki", ki), ("kd", kd)):
            check_range(self.name, label, gain, 0.0, GAIN_MAX, "")
        self._query("PID", fmt(kp, 4), fmt(ki, 4), fmt(kd, 4))

    def pid(self) -> tuple[float, float, float]:
        kp, ki, kd = self._floats(self._query("GPD"), 3, "GPD")
        return kp, ki, kd

    def set_peristaltic(self, rpm: float) -> None:
        """Peristaltic pump speed in rpm; negative reverses, 0 stops."""
        check_range(self.name, "rpm", rpm, -PERISTALTIC_MAX_RPM, PERISTALTIC_MAX_RPM, "rpm")
        self._query("PER", fmt(rpm))

    def peristaltic(self) -> float:
        return self._floats(self._query("PRS"), 1, "PRS")[0]

"""Manual control of the hardware daemon: one handler per command (contract A methods).

Every handler takes the session :class:`~user_control.context.Context` and the parsed
arguments, calls the daemon, prints what the lab now reports (with units) and returns the exit
status. Refusals and unreachable daemons travel as :mod:`user_control.errors` exceptions to the
caller, which prints them as one line.
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from typing import Any, TextIO

from user_control.context import Context
from user_control.errors import EXIT_OK, UsageError
from user_control.units import fields, with_unit

ROBOT_POSITIONS = ("home", "sampler", "abs", "cd", "waste")
# Clearing the screen between refreshes only makes sense on a terminal, not in a log file.
CLEAR_SCREEN = "\x1b[H\x1b[2J"
_REAGENT_ALIAS = re.compile(r"^[Rr](\d+)$")


# -- system -----------------------------------------------------------------------------------
def render_status(status: dict[str, Any]) -> list[str]:
    """``system.status`` as one header line and one line per module."""
    health = "all modules ok" if status.get("ok") else "NOT OK"
    lines = [f"lab clock {with_unit(status.get('clock_s'), 's', 1)}  {health}"]
    for mid, info in sorted(status.get("modules", {}).items()):
        rest = fields(info, skip=("state", "fault", "pump", "module"))
        line = f"  {mid:<6} {str(info.get('state', '?')):<8} {rest}".rstrip()
        if info.get("fault"):
            line += f"  FAULT: {info['fault']}"
        lines.append(line)
    stock = status.get("stock") or {}
    if stock:
        lines.append(
            "stock: "
            + ", ".join(f"{name} {info['stock_mL']:.2f} mL" for name, info in stock.items())
        )
    return lines


def _status_with_stock(ctx: Context) -> dict[str, Any]:
    """``system.status`` with the stock bottles' ledger (``reagent.stock``) under "stock"."""
    return {**ctx.hardware("system.status"), "stock": ctx.hardware("reagent.stock")}


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    """``status [--watch] [--interval S] [--count N]``."""
    if not args.watch:
        status = _status_with_stock(ctx)
        ctx.emit(status, render_status(status))
        return EXIT_OK
    clear = not ctx.as_json and ctx.out.isatty()
    shown = 0
    try:
        while args.count is None or shown < args.count:
            status = _status_with_stock(ctx)
            if clear:
                ctx.out.write(CLEAR_SCREEN)
            stamp = time.strftime("%H:%M:%S")
            ctx.emit(status, [f"-- {stamp} (every {args.interval:g} s, Ctrl-C ends)"])
            if not ctx.as_json:
                ctx.emit(status, render_status(status))
            shown += 1
            if args.count is None or shown < args.count:
                time.sleep(args.interval)
    except KeyboardInterrupt:
        ctx.out.write("\n")
    return EXIT_OK


def cmd_describe(ctx: Context, args: argparse.Namespace) -> int:
    """``describe``: the lab's modules with their limits, and the reagent stocks."""
    lab = ctx.lab()
    sim = " (simulated)" if lab.get("simulated") else ""
    lines = [f"lab {lab.get('lab', '?')}{sim}"]
    for mid, info in sorted(lab.get("modules", {}).items()):
        limits = info.get("limits") or {}
        text = f"  {mid:<6} {info.get('kind', '?'):<13}"
        if limits:
            text += " limits: " + fields(limits)
        lines.append(text.rstrip())
    reagents = lab.get("reagents", {})
    if reagents:
        lines.append("reagents:")
        for index, (name, info) in enumerate(reagents.items(), start=1):
            lines.append(f"  R{index} {name:<12} {fields(info)}")
    ctx.emit(lab, lines)
    return EXIT_OK


def cmd_stop(ctx: Context, args: argparse.Namespace) -> int:
    """``stop``: emergency stop; all pumps stop and the heater switches off."""
    result = ctx.hardware("system.stop")
    stopped = ", ".join(result.get("stopped", [])) or "nothing was running"
    ctx.emit(
        result,
        [f"EMERGENCY STOP: stopped {stopped}", "clear the latched faults with `reset`"],
    )
    return EXIT_OK


def cmd_reset(ctx: Context, args: argparse.Namespace) -> int:
    """``reset``: clear latched faults after an emergency stop."""
    result = ctx.hardware("system.reset_faults")
    ctx.emit(result, ["faults cleared"])
    return EXIT_OK


def cmd_wait(ctx: Context, args: argparse.Namespace) -> int:
    """``wait SECONDS`` on the lab's clock."""
    result = ctx.hardware(
        "system.wait", timeout_s=args.seconds + ctx.settings.timeout_s, seconds=args.seconds
    )
    ctx.emit(result, [f"lab clock {with_unit(result.get('clock_s'), 's', 1)}"])
    return EXIT_OK


# -- pumps ------------------------------------------------------------------------------------
def render_pump(status: dict[str, Any]) -> str:
    """``SP1  0.400 / 0.500 mL Cs-oleate  idle  ok``."""
    busy = "busy" if status.get("busy") else "idle"
    return (
        f"{status.get('pump', '?')}  {with_unit(status.get('volume_mL'), '', 3)} / "
        f"{with_unit(status.get('capacity_mL'), 'mL', 3)} {status.get('reagent') or '(empty)'}"
        f"  {busy}  {status.get('state', '?')}"
    )


def resolve_reagent(ctx: Context, name: str) -> str:
    """A reagent name, or ``R<i>``: the i-th reagent of ``system.describe`` (1-based)."""
    match = _REAGENT_ALIAS.match(name)
    if match is None:
        return name
    reagents = list(ctx.lab().get("reagents", {}))
    if name in reagents:
        return name
    index = int(match.group(1))
    if not 1 <= index <= len(reagents):
        raise UsageError(
            f"reagent {name}: the lab has {len(reagents)} reagents "
            f"(R1..R{len(reagents)}: {', '.join(reagents)})"
        )
    return reagents[index - 1]


def cmd_pump(ctx: Context, args: argparse.Namespace) -> int:
    """``pump ID fill|infuse|withdraw|stop|status ...``."""
    pump = args.pump
    action = args.action
    if action == "fill":
        reagent = resolve_reagent(ctx, args.reagent)
        params: dict[str, Any] = {"pump": pump, "reagent": reagent, "volume_mL": args.volume}
        if args.rate is not None:
            params["rate_mL_min"] = args.rate
        result = ctx.hardware("pump.fill", **params)
        head = f"filled {with_unit(args.volume, 'mL')} of {reagent}"
    elif action in ("infuse", "withdraw"):
        result = ctx.hardware(
            f"pump.{action}",
            pump=pump,
            volume_mL=args.volume,
            rate_mL_min=args.rate,
            wait=not args.no_wait,
        )
        verb = {"infuse": "infused", "withdraw": "withdrew"}[action]
        if args.no_wait:
            verb = {"infuse": "infusing", "withdraw": "withdrawing"}[action]
        head = f"{verb} {with_unit(args.volume, 'mL')} at {with_unit(args.rate, 'mL/min')}"
    elif action == "stop":
        result = ctx.hardware("pump.stop", pump=pump)
        head = "stopped"
    else:
        result = ctx.hardware("pump.status", pump=pump)
        head = ""
    status = result if isinstance(result, dict) and "volume_mL" in result else None
    if status is None:
        status = ctx.hardware("pump.status", pump=pump)
    lines = [f"{pump}: {head}"] if head else []
    lines.append(render_pump(status))
    ctx.emit(status, lines)
    return EXIT_OK


def parse_move(text: str) -> dict[str, Any]:
    """``SP1:0.2:0.05`` -> one ``pump.parallel`` move (volume mL, rate mL/min)."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0]:
        raise UsageError(f"parallel move {text!r}: expected PUMP:VOLUME_mL:RATE_mL_min")
    try:
        volume, rate = float(parts[1]), float(parts[2])
    except ValueError:
        raise UsageError(f"parallel move {text!r}: volume and rate must be numbers") from None
    if not (volume > 0 and rate > 0):
        raise UsageError(f"parallel move {text!r}: volume and rate must be > 0")
    return {"pump": parts[0], "volume_mL": volume, "rate_mL_min": rate}


def cmd_parallel(ctx: Context, args: argparse.Namespace) -> int:
    """``parallel SP1:0.2:0.05 SP2:0.4:0.1 ... [--no-wait]``: pumps infuse at once."""
    moves = [parse_move(m) for m in args.moves]
    result = ctx.hardware("pump.parallel", moves=moves, wait=not args.no_wait)
    verb = "infusing" if args.no_wait else "infused"
    lines = [f"{verb} for {with_unit(result.get('duration_s'), 's', 1)}"]
    lines += [render_pump(status) for status in result.get("pumps", {}).values()]
    ctx.emit(result, lines)
    return EXIT_OK


# -- heater -----------------------------------------------------------------------------------
def render_heater(status: dict[str, Any]) -> str:
    setpoint = status.get("setpoint_C")
    target = with_unit(setpoint, "°C", 1) if setpoint is not None else "off"
    return (
        f"heater {with_unit(status.get('temperature_C'), '°C', 1)}  setpoint {target}  "
        f"stable {with_unit(status.get('stable'), '')}  "
        f"power {with_unit(status.get('power_pct'), '%', 0)}  {status.get('state', '?')}"
    )


def cmd_heater(ctx: Context, args: argparse.Namespace) -> int:
    """``heater set T [--ramp R] [--no-wait] [--timeout S] | off | status``."""
    if args.action == "set":
        wait = not args.no_wait
        if wait and ctx.err.isatty():
            # Only a person watching needs to know why nothing happens for minutes.
            ctx.err.write(
                f"heating to {with_unit(args.setpoint, '°C', 1)} at "
                f"{with_unit(args.ramp, '°C/min', 1)}; waiting until stable...\n"
            )
            ctx.err.flush()
        result = ctx.hardware(
            "heater.set",
            # The daemon may hold the call for up to timeout_s while the block settles.
            timeout_s=(args.timeout + 60.0) if wait else None,
            setpoint_C=args.setpoint,
            ramp_C_min=args.ramp,
            wait_stable=wait,
        )
        if not isinstance(result, dict) or "temperature_C" not in result:
            result = ctx.hardware("heater.status")
    elif args.action == "off":
        ctx.hardware("heater.off")
        result = ctx.hardware("heater.status")
    else:
        result = ctx.hardware("heater.status")
    ctx.emit(result, [render_heater(result)])
    return EXIT_OK


# -- robot, valves ----------------------------------------------------------------------------
def cmd_robot(ctx: Context, args: argparse.Namespace) -> int:
    """``robot move POSITION [POSITION ...] | status``; moves run one after the other."""
    if args.action == "status":
        result = ctx.hardware("robot.status")
        ctx.emit(result, [f"robot {result.get('module', '')} {fields(result, skip=('module',))}"])
        return EXIT_OK
    result: Any = None
    for position in args.positions:
        result = ctx.hardware("robot.move", position=position)
        if not ctx.as_json:
            ctx.emit(result, [f"robot at {position}"])
    if ctx.as_json:
        ctx.emit(result, [])
    return EXIT_OK


def cmd_valve(ctx: Context, args: argparse.Namespace) -> int:
    """``valve ID open|close``."""
    result = ctx.hardware("valve.set", valve=args.valve, open=args.state == "open")
    ctx.emit(result, [f"{args.valve} {'open' if args.state == 'open' else 'closed'}"])
    return EXIT_OK


def cmd_reagent(ctx: Context, args: argparse.Namespace) -> int:
    """``reagent stock`` or ``reagent refill NAME ML``: the stock bottles' ledger."""
    if args.action == "stock":
        stock = ctx.hardware("reagent.stock")
        lines = [f"  {name:<12} {info['stock_mL']:.3f} mL" for name, info in stock.items()]
        ctx.emit(stock, lines or ["no stock bottles"])
        return EXIT_OK
    if args.name is None or args.volume is None:
        raise UsageError("reagent refill: give the reagent and the volume poured in, mL")
    result = ctx.hardware("reagent.refill", reagent=args.name, added_mL=args.volume)
    ctx.emit(
        result,
        [
            f"{result['reagent']}: {result['added_mL']:g} mL added, "
            f"stock {result['stock_mL']:.3f} mL"
        ],
    )
    return EXIT_OK


# -- spectrometers ----------------------------------------------------------------------------
# Measurement kind -> (daemon method, the value key to summarise, its unit, label).
MEASUREMENTS: dict[str, tuple[str, str, str, str]] = {
    "abs": ("spectrometer.absorbance", "absorbance", "", "absorbance"),
    "cd": ("spectrometer.cd", "cd_mdeg", "mdeg", "CD"),
    "pl": ("spectrometer.pl", "intensity", "counts", "PL"),
}


def summarise_spectrum(kind: str, spectrum: dict[str, Any]) -> list[str]:
    """Point count, wavelength range and the extreme value with its wavelength."""
    _, key, unit, label = MEASUREMENTS[kind]
    wavelengths = spectrum.get("wavelength_nm") or []
    values = spectrum.get(key) or []
    if not wavelengths or len(values) != len(wavelengths):
        return [f"{label}: {len(values)} values for {len(wavelengths)} wavelengths"]
    peak = max(range(len(values)), key=lambda i: abs(values[i]))
    lines = [
        f"{label}: {len(values)} points, {with_unit(min(wavelengths), 'nm', 1)} to "
        f"{with_unit(max(wavelengths), 'nm', 1)}",
        f"  largest |{label}| {with_unit(values[peak], unit, 4)} at "
        f"{with_unit(wavelengths[peak], 'nm', 1)}",
    ]
    if spectrum.get("abs_300nm") is not None:
        lines.append(f"  absorbance at 300 nm {with_unit(spectrum['abs_300nm'], '', 4)}")
    if spectrum.get("saturated"):
        lines.append("  WARNING: detector saturated; shorten the integration time")
    return lines


def write_spectrum_csv(path: str, spectrum: dict[str, Any], stdout: TextIO) -> int:
    """Columns: wavelength_nm and every list of the same length; ``-`` writes to ``stdout``."""
    wavelengths = spectrum.get("wavelength_nm") or []
    columns = ["wavelength_nm"] + [
        key
        for key, value in spectrum.items()
        if key != "wavelength_nm" and isinstance(value, list) and len(value) == len(wavelengths)
    ]
    rows = zip(*(spectrum[c] for c in columns), strict=True)
    if path == "-":
        writer = csv.writer(stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return len(wavelengths)
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
    except OSError as exc:
        raise UsageError(f"--csv {path}: cannot write: {exc.strerror}") from None
    return len(wavelengths)


def cmd_measure(ctx: Context, args: argparse.Namespace) -> int:
    """``measure abs|cd|pl [--integration MS] [--excitation NM] [--csv FILE]``."""
    method = MEASUREMENTS[args.kind][0]
    params: dict[str, Any] = {"integration_ms": args.integration}
    if args.kind == "pl":
        params["excitation_nm"] = args.excitation
    spectrum = ctx.hardware(method, **params)
    lines = summarise_spectrum(args.kind, spectrum)
    if args.csv:
        rows = write_spectrum_csv(args.csv, spectrum, ctx.out)
        if args.csv != "-":
            lines.append(f"  {rows} rows written to {args.csv}")
    ctx.emit(spectrum, lines)
    return EXIT_OK

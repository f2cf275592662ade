"""Emulator of a JASCO J-1500 behind its vendor software: writes the measurement export.

Run as the JascoJ1500Export driver's measurement command:

    python -m hardware_interface.sim.emulators.jasco EXPORT_DIR [--jcamp] [--pause S] [--detach]

It writes one spectrum (a bisignate exciton CD band at 450 nm, HT voltage and absorbance
channels) as a JASCO text export (the layout described in devices/jasco_export.py) or as
JCAMP-DX, in two parts `--pause` seconds apart, as software still writing a file does; with
`--detach` the command returns at once and a child process writes the file, as a vendor macro
runner that only starts the scan does. `spectrum(...)` gives the same data to tests.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path


def spectrum(first_nm: float = 600.0, last_nm: float = 300.0, step_nm: float = 1.0,
             amplitude_mdeg: float = 1.0) -> list[tuple[float, float, float, float]]:  # fmt: skip
    """Rows (wavelength nm, CD mdeg, HT V, absorbance), from long to short wavelength."""
    rows = []
    count = int(round((first_nm - last_nm) / step_nm)) + 1
    for i in range(count):
        x = first_nm - i * step_nm
        u = (x - 450.0) / 15.0
        cd = amplitude_mdeg * 2.0 * u * math.exp(-u * u)
        absorbance = 0.3 * math.exp(-(((x - 450.0) / 25.0) ** 2)) + 0.05 * (600.0 - x) / 300.0
        ht = 250.0 + 150.0 * (600.0 - x) / 300.0
        rows.append((x, cd, ht, absorbance))
    return rows


def jasco_text(rows: list[tuple[float, float, float, float]], title: str = "sample") -> str:
    head = [
        ("TITLE", title), ("DATA TYPE", ""), ("ORIGIN", "JASCO"), ("OWNER", ""),
        ("DATE", time.strftime("%y/%m/%d")), ("TIME", time.strftime("%H:%M:%S")),
        ("SPECTROMETER/DATA SYSTEM", "JASCO Corp., J-1500 (emulated)"), ("RESOLUTION", ""),
        ("DELTAX", f"{rows[1][0] - rows[0][0]:g}"), ("XUNITS", "NANOMETERS"),
        ("YUNITS", "CD[mdeg]"), ("Y2UNITS", "HT[V]"), ("Y3UNITS", "ABSORBANCE"),
        ("FIRSTX", f"{rows[0][0]:.4f}"), ("LASTX", f"{rows[-1][0]:.4f}"),
        ("NPOINTS", str(len(rows))), ("FIRSTY", f"{rows[0][1]:.5f}"),
        ("MAXY", f"{max(r[1] for r in rows):.5f}"), ("MINY", f"{min(r[1] for r in rows):.5f}"),
    ]  # fmt: skip
    lines = [f"{k}\t{v}" for k, v in head] + ["XYDATA"]
    lines += [f"{x:.4f}\t{cd:.6g}\t{ht:.6g}\t{a:.6g}" for x, cd, ht, a in rows]
    return "\r\n".join(lines) + "\r\n"


def jcamp_text(rows: list[tuple[float, float, float, float]], title: str = "sample") -> str:
    lines = [
        f"##TITLE={title}", "##JCAMP-DX=4.24", "##DATA TYPE=CIRCULAR DICHROISM SPECTRUM",
        "##ORIGIN=JASCO", "##XUNITS=NANOMETERS", "##YUNITS=CD [mdeg]",
        f"##FIRSTX={rows[0][0]:g}", f"##LASTX={rows[-1][0]:g}", f"##NPOINTS={len(rows)}",
        "##XYPOINTS=(XY..XY)",
    ]  # fmt: skip
    lines += [f"{x:g}, {cd:.6g}" for x, cd, _, _ in rows]
    lines.append("##END=")
    return "\n".join(lines) + "\n"


def write_export(path: Path, text: str, pause_s: float) -> None:
    """Write `text` to `path` in two parts, `pause_s` apart."""
    middle = len(text) // 2
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text[:middle])
        handle.flush()
        time.sleep(pause_s)
        handle.write(text[middle:])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--jcamp", action="store_true")
    parser.add_argument("--pause", type=float, default=0.2)
    parser.add_argument("--detach", action="store_true")
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    if args.detach:
        child = [a for a in argv if a != "--detach"]
        subprocess.Popen([sys.executable, "-m", __spec__.name, *child])  # noqa: S603
        return 0
    name = args.name or time.strftime("cd_%H%M%S") + f"_{time.time_ns() % 1000000}"
    rows = spectrum()
    if args.jcamp:
        write_export(args.export_dir / f"{name}.jdx", jcamp_text(rows, name), args.pause)
    else:
        write_export(args.export_dir / f"{name}.txt", jasco_text(rows, name), args.pause)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

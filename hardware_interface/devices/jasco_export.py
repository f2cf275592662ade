"""JASCO J-1500 CD spectrometer through its vendor software's measurement export folder.

JASCO publishes no serial or network protocol for the J-1500; labs drive it through the vendor
software (Spectra Manager) on the Windows PC attached to it. This driver does the same: it starts
a measurement with a configured command (an argv list run without a shell, e.g. a Spectra
Manager macro runner) or by dropping a copy of a macro file into a folder the software watches,
then waits for the exported spectrum to appear in `export_dir` and reads it.

Export formats read:
  - JASCO text/CSV export: "KEY<tab or comma>VALUE" header lines (TITLE, ORIGIN JASCO,
    SPECTROMETER/DATA SYSTEM, XUNITS NANOMETERS, YUNITS CD[mdeg], Y2UNITS HT[V], FIRSTX, LASTX,
    NPOINTS, ...), then a line XYDATA and one row per point: x, y, y2 (and y3 when a third
    channel is exported). Source: a J-810 export printed in a public repository (header lines
    as listed, tab separated, "XYDATA" then rows "300.0000<tab>-0.165493<tab>314.681"), and
    JASCOFiles.jl (github garrekstemo, README: JASCO CSV exports carry the same header keys).
    NOT confirmed from a JASCO document: the J-1500's own header (assumed the same), the name of
    a third (absorbance) channel (any Y*UNITS containing "ABS" is taken as absorbance).
  - JCAMP-DX (.jdx, .dx), read with the `jcamp` package (JCAMP-DX 4.24, McDonald and Wilks,
    Appl. Spectrosc. 42, 151 (1988)); complete once "##END=" is present.

A file counts only if it appeared (or changed) after the trigger: files already in the folder
are stale and never taken, whatever their names. A new file is read only once its size and
modification time have been unchanged for `settle_s` and it parses completely (NPOINTS rows, or
the JCAMP end marker), since the software may still be writing it. No such file within
`timeout_s`: DeviceTimeout, naming what was seen. The measurement parameters (range, scan speed,
accumulations) live in the Spectra Manager method or macro, not here: `integration_ms` is checked
for range and otherwise not used. `ht_limit_V`: a photomultiplier voltage above it marks the
spectrum saturated (the lab's choice; JASCO's own limit for the J-1500 is not confirmed here).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hardware_interface.devices.base import (
    DeviceError,
    DeviceRefused,
    DeviceTimeout,
    GarbledReply,
    check_range,
)
from hardware_interface.devices.capabilities import Spectrum

MODEL = "JASCO J-1500 (export folder)"
PATTERNS = ("*.txt", "*.csv", "*.jdx", "*.dx")
INTEGRATION_MIN_MS = 1.0
INTEGRATION_MAX_MS = 10_000.0
_SPLIT = re.compile(r"\t|,")


class IncompleteExport(ValueError):
    """The file does not (yet) hold a whole spectrum."""


def parse_jasco_text(text: str) -> tuple[dict[str, str], list[list[float]]]:
    """Header and data rows of a JASCO text/CSV export; IncompleteExport until all are there."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        parts = [p.strip() for p in _SPLIT.split(line, maxsplit=1)]
        key = parts[0].upper()
        if key == "XYDATA":
            rows = []
            for row_line in lines[index + 1 :]:
                cells = [c.strip() for c in _SPLIT.split(row_line) if c.strip() != ""]
                try:
                    rows.append([float(c) for c in cells])
                except ValueError:
                    break  # the data ends (an extended-information block may follow)
                if not cells:
                    break
            npoints = header.get("NPOINTS", "")
            if not npoints.isdigit():
                raise IncompleteExport("no NPOINTS in the header")
            if len(rows) < int(npoints) or (rows and len(rows[-1]) != len(rows[0])):
                raise IncompleteExport(f"{len(rows)} of {npoints} rows")
            return header, rows[: int(npoints)]
        if len(parts) == 2:
            header[key] = parts[1]
    raise IncompleteExport("no XYDATA line yet")


def _channel(units: str) -> str | None:
    u = units.upper().replace(" ", "")
    if u.startswith("CD"):
        return "cd_mdeg"
    if u.startswith("HT"):
        return "ht_V"
    if "ABS" in u:
        return "absorbance"
    return None


class JascoJ1500Export:
    """CD (and absorbance, when exported) spectra of a J-1500 read from `export_dir`."""

    def __init__(
        self,
        name: str,
        export_dir: str | Path,
        command: list[str] | None = None,
        macro_file: str | Path | None = None,
        macro_dir: str | Path | None = None,
        timeout_s: float = 900.0,
        settle_s: float = 2.0,
        poll_s: float = 0.5,
        ht_limit_V: float = 800.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (command is None) == (macro_file is None):
            raise DeviceError(name, "give exactly one trigger: a command or a macro file")
        if macro_file is not None and macro_dir is None:
            raise DeviceError(name, "a macro file needs the folder the software watches")
        self.name = name
        self.export_dir = Path(export_dir)
        if not self.export_dir.is_dir():
            raise DeviceError(name, f"export folder {self.export_dir} does not exist")
        self.command = command
        self.macro_file = None if macro_file is None else Path(macro_file)
        self.macro_dir = None if macro_dir is None else Path(macro_dir)
        self.timeout_s = timeout_s
        self.settle_s = settle_s
        self.poll_s = poll_s
        self.ht_limit_V = ht_limit_V
        self._sleep = sleep
        self._count = 0

    # -- the folder -----------------------------------------------------------------------
    def _snapshot(self) -> dict[Path, tuple[int, int]]:
        files = {}
        for pattern in PATTERNS:
            for path in self.export_dir.glob(pattern):
                try:
                    stat = path.stat()
                except OSError:
                    continue  # deleted meanwhile
                files[path] = (stat.st_size, stat.st_mtime_ns)
        return files

    def _trigger(self) -> None:
        self._count += 1
        if self.command is not None:
            try:
                done = subprocess.run(self.command, capture_output=True, timeout=self.timeout_s)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise DeviceRefused(self.name, 1, f"measurement command failed: {exc}") from exc
            if done.returncode != 0:
                tail = done.stderr.decode(errors="replace").strip()[-200:]
                raise DeviceRefused(
                    self.name, done.returncode, f"measurement command exited {done.returncode}: "
                    f"{tail}",
                )  # fmt: skip
            return
        assert self.macro_file is not None and self.macro_dir is not None
        target = self.macro_dir / f"{self.macro_file.stem}-{self._count}{self.macro_file.suffix}"
        partial = target.with_suffix(target.suffix + ".part")
        try:
            shutil.copyfile(self.macro_file, partial)
            partial.replace(target)  # the watcher never sees a half-copied macro
        except OSError as exc:
            raise DeviceRefused(self.name, 1, f"cannot drop the macro: {exc}") from exc

    def _read(self, path: Path) -> Spectrum:
        if path.suffix.lower() in (".jdx", ".dx"):
            return self._read_jcamp(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        header, rows = parse_jasco_text(text)
        names = [_channel(header.get(key, "")) for key in ("YUNITS", "Y2UNITS", "Y3UNITS")]
        values: dict[str, list[float]] = {}
        for column, channel in enumerate(names, start=1):
            if channel is not None and all(len(r) > column for r in rows):
                values[channel] = [r[column] for r in rows]
        return self._spectrum([r[0] for r in rows], values)

    def _read_jcamp(self, path: Path) -> Spectrum:
        import jcamp  # the optional JCAMP-DX reader (requirements.txt)

        text = path.read_text(encoding="utf-8", errors="replace")
        if "##END=" not in text.upper():
            raise IncompleteExport("no ##END= yet")
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            data = jcamp.read(handle)
        x, y = list(map(float, data["x"])), list(map(float, data["y"]))
        npoints = data.get("npoints")
        if npoints is not None and len(x) != int(float(npoints)):
            raise IncompleteExport(f"{len(x)} of {npoints} points")
        channel = _channel(str(data.get("yunits", ""))) or "cd_mdeg"
        return self._spectrum(x, {channel: y})

    def _spectrum(self, x: list[float], values: dict[str, list[float]]) -> Spectrum:
        if "cd_mdeg" not in values and "absorbance" not in values:
            raise GarbledReply(self.name, "the export has neither a CD nor an absorbance channel")
        order = sorted(range(len(x)), key=x.__getitem__)  # JASCO scans from long to short
        ordered = {k: [v[i] for i in order] for k, v in values.items()}
        ht = ordered.pop("ht_V", None)
        saturated = ht is not None and max(ht) > self.ht_limit_V
        scalars = {} if ht is None else {"ht_max_V": max(ht)}
        return Spectrum([x[i] for i in order], ordered, saturated, scalars)

    def measure(self) -> Spectrum:
        """Trigger one measurement and return the spectrum the software exports for it."""
        before = self._snapshot()
        self._trigger()
        waited = 0.0
        seen: dict[Path, tuple[tuple[int, int], float]] = {}  # path -> (size, mtime), since
        problem = "no new file in the export folder"
        while True:
            for path, stamp in self._snapshot().items():
                if before.get(path) == stamp:
                    continue  # stale: there before the trigger, unchanged
                last = seen.get(path)
                if last is None or last[0] != stamp:
                    seen[path] = (stamp, waited)
                    continue
                if waited - last[1] < self.settle_s:
                    continue  # still settling
                try:
                    return self._read(path)
                except IncompleteExport as exc:
                    problem = f"{path.name} is incomplete ({exc})"
                except OSError as exc:
                    problem = f"{path.name} cannot be read ({exc})"
            if waited >= self.timeout_s:
                raise DeviceTimeout(self.name, f"no whole export within {self.timeout_s} s: "
                                    f"{problem}")  # fmt: skip
            self._sleep(self.poll_s)
            waited += self.poll_s

    # -- the spectrometer capability ------------------------------------------------------
    def cd(self, integration_ms: float) -> Spectrum:
        check_range(self.name, "integration_ms", integration_ms, INTEGRATION_MIN_MS,
                    INTEGRATION_MAX_MS, "ms")  # fmt: skip
        spectrum = self.measure()
        if "cd_mdeg" not in spectrum.values:
            raise GarbledReply(self.name, "the export has no CD channel")
        return spectrum

    def absorbance(self, integration_ms: float) -> Spectrum:
        check_range(self.name, "integration_ms", integration_ms, INTEGRATION_MIN_MS,
                    INTEGRATION_MAX_MS, "ms")  # fmt: skip
        spectrum = self.measure()
        if "absorbance" not in spectrum.values:
            raise DeviceRefused(self.name, 3, "the export has no absorbance channel: add it to "
                                "the Spectra Manager measurement")  # fmt: skip
        return spectrum

    def identify(self) -> list[str]:
        return [MODEL, str(self.export_dir)]

    def stop(self) -> None:
        """Nothing moves or heats here; a running scan is stopped in the vendor software."""

    def close(self) -> None:
        """No line to close."""

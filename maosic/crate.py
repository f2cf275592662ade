"""RO-Crate records of a request: what the crate holds, where, and the limits an import keeps.

A crate is a folder (or its zip) with ``ro-crate-metadata.json`` and a fixed set of JSON files
(docs/ro_crate.md). Export is :mod:`maosic.crate_export`, import :mod:`maosic.crate_import`.
The layout is fixed here, in one place, because the importer reads only these names: a name
written in a crate is never used as a path.
"""

from __future__ import annotations

import base64
import binascii
import importlib.metadata
import io
import re
import subprocess
import tomllib
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
METADATA = "ro-crate-metadata.json"
# How an imported request's stop_reason begins: the campaign lets such history seed only the
# importer's own requests (a crate's numbers are the importer's word, not this lab's).
IMPORTED_PREFIX = "imported from RO-Crate"
REQUEST_FILE = "request.json"
CONFIG_FILE = "reaction/config.json"
PROGRAM_FILE = "reaction/program.json"
LAB_FILE = "lab/description.json"
EXPERIMENTS_FILE = "experiments.json"
AUDIT_FILE = "audit/hardware-commands.json"
# Offline characterization (maosic/attachments.py): exported with the crate; an import skips
# them (they are the exporting lab's files, and a file is never taken for a path).
ATTACHMENT_NAME = re.compile(
    r"attachments/(attachments\.json|attachment-[0-9]{1,12}\.(png|jpg|tif|pdf|txt|csv|bin))"
)
SPECTRA_NAME = re.compile(r"spectra/experiment-([0-9]{4,6})\.json")
FIXED_FILES = (REQUEST_FILE, CONFIG_FILE, PROGRAM_FILE, LAB_FILE, EXPERIMENTS_FILE, AUDIT_FILE)
# The crate format this code writes; an import refuses a crate that does not say it.
FORMAT = "maosic-request-crate/1"

# Limits on what an import accepts: a finished campaign is at most 10,000 experiments of a few
# spectra of a few thousand points; anything far beyond is an accident or an attack.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 20_000
MAX_ZIP_BYTES = 64 * 1024 * 1024


class CrateError(ValueError):
    """A crate that cannot be read or imported; ``where`` names the file (and the place in it)."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message


def spectra_file(number: int) -> str:
    return f"spectra/experiment-{number:04d}.json"


def software_version() -> str:
    """The git commit of this checkout, else the package version: what reproduces the run."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        commit = done.stdout.strip()
        if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit):
            return f"git {commit}"
    except (OSError, subprocess.SubprocessError):
        pass  # no git on this machine: the package version below
    try:
        return importlib.metadata.version("maosic")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        return str(project["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def zip_folder(folder: Path) -> bytes:
    """The crate folder as zip bytes, members at the zip's root (as rocrate writes them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def decode_base64(text: object, where: str = "crate") -> bytes:
    """Zip bytes from the base64 text a JSON-RPC call carries."""
    if not isinstance(text, str):
        raise CrateError(where, f"must be base64 text of a zip, got {type(text).__name__}")
    if len(text) > MAX_ZIP_BYTES * 4 // 3 + 4:
        raise CrateError(where, f"larger than {MAX_ZIP_BYTES // (1024 * 1024)} MiB zipped")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CrateError(where, "not base64 text") from None


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

"""RO-Crates from the terminal: ``export ID --ro-crate DIR`` and ``import-crate PATH``.

A crate is checked here before it is sent (docs/ro_crate.md), so a broken one is reported with
the file and place at fault without a round trip; the core checks it again, since it trusts no
client.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

from maosic.crate import CrateError, decode_base64, encode_base64
from user_control.context import Context
from user_control.errors import EXIT_OK, Refused, UsageError


def _usable_folder(text: str) -> Path:
    """The output folder: absent (created) or empty, so a crate never mixes with other files."""
    folder = Path(text)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"--ro-crate {text}: must be a new or empty folder")
    return folder


def cmd_export_crate(ctx: Context, args: argparse.Namespace) -> int:
    """``export ID --ro-crate DIR``: the request's RO-Crate unpacked into DIR."""
    folder = _usable_folder(args.ro_crate)
    reply = ctx.core("request.export_crate", id=args.id)
    try:
        data = decode_base64(reply.get("crate") if isinstance(reply, dict) else None)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            folder.mkdir(parents=True, exist_ok=True)
            # extractall drops absolute and '..' parts of member names: nothing lands outside.
            archive.extractall(folder)
            count = len(archive.namelist())
    except (CrateError, zipfile.BadZipFile) as exc:
        raise Refused(f"the core sent no readable crate: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--ro-crate {args.ro_crate}: cannot write: {exc.strerror}") from None
    audit = "with" if reply.get("audit_log") else "without"
    ctx.emit(
        {"id": args.id, "folder": str(folder), "files": count, "audit_log": reply.get("audit_log")},
        [f"request {args.id}: RO-Crate ({count} files, {audit} the audit log) in {folder}"],
    )
    return EXIT_OK


def import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the crate: a folder or a .zip file")


def cmd_import(ctx: Context, args: argparse.Namespace) -> int:
    """``import-crate PATH``: the crate's experiments as a finished request of yours."""
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"crate {args.path} does not exist")
    try:
        # Imported here: the checker brings the database models and the optimizers, which
        # every other command (a `pump fill`) would otherwise wait for at start.
        from maosic.crate_import import repack

        data, checked = repack(path)
    except CrateError as exc:
        raise UsageError(f"crate {args.path}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"crate {args.path}: cannot read it: {exc.strerror}") from None
    reply = ctx.core("request.import_crate", crate=encode_base64(data), name=path.name[:200])
    ctx.emit(
        reply,
        [
            f"request {reply['id']}: imported {len(checked.experiments)} experiments of "
            f"{checked.config.get('name')!r} (done; a new request of the same reaction starts "
            "from them)"
        ],
    )
    return EXIT_OK

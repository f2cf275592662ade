"""``request.export_crate`` and ``request.import_crate``: RO-Crates over the core's JSON-RPC.

Kept apart from :class:`maosic.service.CoreService` (the crate code is large and optional) but
with its rules: the caller comes from the credentials, another user's request is "not found",
and bad input is a :class:`ServiceError` naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from maosic.crate import CrateError, decode_base64, encode_base64
from maosic.crate_export import AuditChoice, crate_zip
from maosic.crate_import import CrateSource, check_crate, store
from maosic.db.crypto import LogCipher
from maosic.db.models import Request, User
from maosic.db.session import run_transaction
from maosic.rpc_auth import Caller
from maosic.service import CoreService, NotFound, ServiceError

MAX_ID = 2**63 - 1
MAX_CRATE_NAME = 200


class CrateService:
    """``log_cipher``: the core's audit-log key; without it crates leave the audit log out."""

    def __init__(self, service: CoreService, log_cipher: LogCipher | None = None):
        # The CoreService, not its parts: the method table is built from an instance that may
        # not be initialised (tests list the signatures only).
        self._service = service
        self._cipher = log_cipher

    def export_crate(self, caller: Caller, id: int, audit_log: bool = True) -> dict[str, Any]:
        """The request's RO-Crate as base64 zip. The audit log comes with it for the owner and
        staff (the only callers who see the request here) unless ``audit_log`` is false."""
        if isinstance(id, bool) or not isinstance(id, int) or not 1 <= id <= MAX_ID:
            raise ServiceError("id", f"must be a request id (an integer from 1 to {MAX_ID})")
        if not isinstance(audit_log, bool):
            raise ServiceError("audit_log", "must be true or false")
        if not audit_log:
            audit = AuditChoice(None, "the exporter asked for the crate without it")
        elif self._cipher is None:
            audit = AuditChoice(None, "this core has no audit-log key to decrypt it")
        else:
            audit = AuditChoice(self._cipher)
        with self._service.sessions() as session:
            request = session.get(Request, id)
            if request is None or not caller.owns(request.owner_id):
                raise NotFound(f"no request {id}")
            data = crate_zip(session, request, self._service.describe_lab, audit)
        return {
            "id": id,
            "filename": f"request-{id}-ro-crate.zip",
            "audit_log": audit.cipher is not None,
            "crate": encode_base64(data),
        }

    def import_crate(self, caller: Caller, crate: str, name: str = "crate.zip") -> dict[str, Any]:
        """Re-create the crate's reaction and experiments as a finished request of the caller.
        ``crate``: base64 of the zip; ``name``: what the crate was called (for the record)."""
        if not isinstance(name, str) or len(name) > MAX_CRATE_NAME:
            raise ServiceError("name", f"must be text of at most {MAX_CRATE_NAME} characters")
        if caller.user_id is None:
            raise ServiceError("crate", "the installation token acts for no account to own it")
        name = re.sub(r"[^\w.\- ]", "_", name)[:MAX_CRATE_NAME] or "crate.zip"
        try:
            checked = check_crate(CrateSource(zip_bytes=decode_base64(crate)))
        except CrateError as exc:
            raise ServiceError("crate", str(exc), {"where": exc.where}) from exc

        def write(session: Session) -> dict[str, Any]:
            importer = session.get(User, caller.user_id)
            try:
                new_id = store(session, checked, importer, name)
            except CrateError as exc:
                raise ServiceError("crate", str(exc), {"where": exc.where}) from exc
            return {"id": new_id, "experiments": len(checked.experiments), "status": "done"}

        return run_transaction(self._service.sessions, write)


def crate_methods(
    service: CoreService, log_cipher: LogCipher | None = None
) -> dict[str, Callable[..., Any]]:
    """The crate methods for :func:`maosic.rpc.method_table` (each still ``func(caller, ...)``)."""
    crates = CrateService(service, log_cipher)
    return {
        "request.export_crate": crates.export_crate,
        "request.import_crate": crates.import_crate,
    }

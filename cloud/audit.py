"""The audit log of operators' manual actions, in the same table as the campaigns' commands.

Each row (``hardware_commands``) has no request; ``actor`` says who sent it
(``operator:<username>``) and ``lease_epoch`` under which lease (None: sent without holding
the lab). Parameters and results are encrypted with the log key like a campaign's, so
``scripts/decrypt_log.py --manual`` reads both alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloud.context import db, web
from cloud.rpc_client import RpcFailure
from maosic.db.crypto import LogCipher, LogKeyError
from maosic.db.models import HardwareCommand


@dataclass(frozen=True)
class ManualCall:
    """One manual call as it is logged."""

    actor: str
    lease_epoch: int | None
    method: str
    params: dict[str, Any]
    sent_at: float  # time.time() when it was sent


def record(call: ManualCall, result: Any, error: RpcFailure | None, duration_ms: float) -> None:
    """Store ``call`` with its result (or the daemon's refusal) in the audit log."""
    try:
        cipher = LogCipher.from_file(web().log_key_file)
    except (LogKeyError, OSError):
        return  # no usable key: the daemon still logs the command on its side
    outcome = result if error is None else {"error": error.message, "data": error.data}
    session = db()
    session.add(
        HardwareCommand(
            method=call.method,
            ok=error is None,
            error_code=error.code if error else None,
            params_enc=cipher.encrypt_json(call.params),
            result_enc=cipher.encrypt_json(outcome),
            # Naive UTC, as every timestamp in the schema (maosic.db.models.utcnow).
            sent_at=datetime.fromtimestamp(call.sent_at, UTC).replace(tzinfo=None),
            duration_ms=duration_ms,
            actor=call.actor[:128],
            lease_epoch=call.lease_epoch,
        )
    )
    session.commit()

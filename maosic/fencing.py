"""The database side of one lab, one driver: a worker writes a request only while its claim
holds.

A claim records the lab (its daemon's ``lab_uid``) and the lease epoch under which the worker
runs the request, and the worker's name. Every write of a campaign first updates the request
row under exactly that claim, in the same transaction as the write: if another worker has
since claimed the request (a newer lease on the lab, or a takeover of a stale heartbeat), the
update matches no row and the whole transaction is rolled back with :class:`ClaimLost`. On
MySQL/MariaDB the update also locks the row until commit, so a takeover and a write are
serialised; SQLite serialises all writes anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, update
from sqlalchemy.orm import Session

from maosic.db.models import Request, utcnow

REQUESTS = Request.__table__


class ClaimLost(RuntimeError):
    """Another worker now holds this request: stop, and write nothing more."""


@dataclass(frozen=True)
class Fence:
    """The claim a worker holds on one request."""

    request_id: int
    worker: str
    lab_uid: str | None = None  # None: run without a lease (in-process labs, no daemon lease)
    epoch: int | None = None

    def matches(self) -> ColumnElement[bool]:
        """SQL condition: the request row is still under this claim."""
        return and_(
            REQUESTS.c.id == self.request_id,
            REQUESTS.c.worker == self.worker,
            _same(REQUESTS.c.lease_lab, self.lab_uid),
            _same(REQUESTS.c.lease_epoch, self.epoch),
        )

    def hold(self, session: Session, **values: Any) -> None:
        """Touch the request under this claim (setting ``values`` too), or raise ClaimLost."""
        touched = session.execute(
            update(REQUESTS)
            .where(self.matches())
            .values(heartbeat_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if touched != 1:
            raise ClaimLost(
                f"request {self.request_id} is no longer claimed by {self.worker} under lease "
                f"epoch {self.epoch}: another worker took it over"
            )


def _same(column: Any, value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value

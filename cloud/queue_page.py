"""The queue: every waiting or running request in FIFO order, with position and estimated start.

Everyone sees the whole queue (so they know how long they will wait), but only their own
entries by name: other users' requests show as "another user's request".
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template
from flask_login import current_user, login_required

from cloud import rundata
from cloud.context import db
from maosic.queue import waiting

bp = Blueprint("queue", __name__)


def queue_rows() -> list[dict[str, Any]]:
    rows = []
    requests = waiting(db())
    for request, info in zip(requests, rundata.summaries(requests), strict=True):
        mine = current_user.is_staff or request.owner_id == current_user.id
        rows.append(
            {
                "id": request.id if mine else None,
                "seq": info["seq"],
                "position": info["position"],
                "status": info["status"],
                "owner": info["owner"] if current_user.is_staff else None,
                "mine": request.owner_id == current_user.id,
                "reaction": info["reaction"] if mine else "another user's request",
                "budget": info["budget"],
                "n_done": info["n_done"],
                # maosic.queue.estimates: the wait behind those ahead, and which clock it is on
                "estimated_start_s": info["estimated_start_s"],
                "eta_s": info["eta_s"],
                "eta_clock": info["eta_clock"],
                "eta_basis": info["eta_basis"],
                "eta_lab_s": info["eta_lab_s"],
            }
        )
    return rows


@bp.route("/queue")
@login_required
def queue() -> str:
    return render_template("queue.html", rows=queue_rows())


@bp.route("/queue.json")
@login_required
def queue_json() -> Response:
    return jsonify(queue=queue_rows())

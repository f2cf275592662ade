"""The run page's "What drove the result" card: ``GET /requests/<id>/explain.json``.

Which inputs mattered and in which direction (SHAP values of a surrogate fitted on the
request's experiments, maosic/explain.py), the surrogate's held-out R², the response surface of
the two most important factors, and whether the data can carry an explanation at all. Computed
in this process from the database (the same rows the page shows, under the same visibility
rule) and kept per set of results (maosic/explain_service.py): it takes seconds once, then
nothing until a new result arrives.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_login import login_required

from cloud import rundata
from cloud.context import db
from maosic.explain_service import explanation

bp = Blueprint("explain", __name__)


@bp.get("/requests/<int:request_id>/explain.json")
@login_required
def explain_json(request_id: int) -> Response:
    request = rundata.load_request(request_id)
    reply = jsonify(id=request.id, **explanation(db(), request))
    reply.headers["Cache-Control"] = "no-store"
    return reply

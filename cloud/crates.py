"""RO-Crates on the web site: the run page's "RO-Crate" download and the import page.

The download is built here from the database (as the other downloads are), so a colleague a
request is shared with gets it too, without the audit log: that stays with the owner and staff.
An import goes to the core's ``request.import_crate`` like every other change to the requests.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, url_for
from flask import request as http_request
from flask_login import current_user, login_required

from cloud import rundata
from cloud.context import db, log_cipher, web
from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic.crate import MAX_ZIP_BYTES, encode_base64
from maosic.crate_export import AuditChoice, crate_zip
from maosic.labs import lab_description
from maosic.rpc import MAX_BODY

bp = Blueprint("crates", __name__)
log = logging.getLogger(__name__)
# The upload travels to the core as base64 in one JSON-RPC body (4/3 larger), which the core
# caps at MAX_BODY: a larger file is refused here, with that limit named.
MAX_UPLOAD = min(MAX_ZIP_BYTES, (MAX_BODY - 4096) * 3 // 4)


def _describe(url: str) -> dict[str, Any] | None:
    """The lab's system.describe with the site's own daemon credentials; None if silent."""
    config = current_app.config
    return lab_description(
        url,
        {
            "token": config.get("HARDWARE_TOKEN") or "",
            "ca_file": config.get("HARDWARE_CA_FILE") or "",
            "client_cert": config.get("HARDWARE_CLIENT_CERT") or "",
        },
    )


@bp.route("/requests/<int:request_id>/crate.zip")
@login_required
def crate_download(request_id: int) -> Response:
    request = rundata.load_request(request_id)  # 404 unless owner, staff or shared with
    if rundata.may_manage(request):
        cipher = log_cipher()
        audit = AuditChoice(cipher, "the web site has no audit-log key to decrypt it")
    else:
        audit = AuditChoice(None, "shared read-only: the audit log stays with the owner")
    data = crate_zip(db(), request, _describe, audit)
    return Response(
        data,
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="request-{request.id}-ro-crate.zip"'
        },
    )


@bp.route("/import", methods=["GET", "POST"])
@login_required
def import_page() -> Any:
    error = ""
    if http_request.method == "POST":
        upload = http_request.files.get("crate")
        data = upload.stream.read(MAX_UPLOAD + 1) if upload else b""
        if not data:
            error = "choose a crate (.zip) to import"
        elif len(data) > MAX_UPLOAD:
            error = f"the crate is larger than {MAX_UPLOAD // 1024} KiB, the most one upload takes"
        else:
            try:
                reply = web().core.call(
                    "request.import_crate",
                    as_user=current_user.username,
                    crate=encode_base64(data),
                    name=(upload.filename or "crate.zip")[:200],
                )
            except RpcFailure as exc:
                error = exc.message
            except RpcUnavailable:
                error = "the core is not reachable; try again in a moment"
            else:
                log.info("%s imported a crate as request %s", current_user.username, reply["id"])
                flash(
                    f"Imported {reply['experiments']} experiments as request {reply['id']}: "
                    "a new request of the same reaction starts from them.",
                    "success",
                )
                return redirect(url_for("runs.run_page", request_id=reply["id"]))
    page = render_template("crates/import.html", error=error, max_kib=MAX_UPLOAD // 1024)
    return page, (400 if error else 200)

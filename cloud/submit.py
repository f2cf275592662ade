"""New request: stored reaction, formula (checked as you type) or uploaded configuration.

The request is submitted ONLY through the core's JSON-RPC ``request.submit``; the core validates
it again, and its field errors (with line and column for formulas) are shown on the form.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms.fields.choices import SelectChoice

from cloud.context import db, web
from cloud.forms import RequestForm
from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic.db.models import Reaction
from maosic.language.compiler import compile_formula
from maosic.language.config import formula_config, load_config
from maosic.language.errors import LanguageError
from maosic.language.header import formula_space
from maosic.plans import DESIGNS, MAX_CSV_BYTES, PlanError, rows_from_csv

bp = Blueprint("submit", __name__)

FROM_CONFIG = ""  # the target/optimizer choice that leaves them to the configuration
DESCRIBE_TTL_S = 60.0  # the core's optimizer/metric lists change only with a new release
MAX_FORMULA_CHARS = 20_000
FALLBACK_DESCRIBE: dict[str, Any] = {
    "optimizers": ["snobfit"],
    "default_optimizer": "snobfit",
    "metrics": {"max_abs_cd_at_exciton": "maximise |CD| at the first exciton absorption peak"},
}


def core_describe() -> tuple[dict[str, Any], bool]:
    """The core's optimizers and metrics (cached), and whether the core answered."""
    cache = web().describe_cache
    if cache and time.monotonic() - cache["at"] < DESCRIBE_TTL_S:
        return cache["value"], True
    try:
        described = web().core.call("core.describe")
    except (RpcFailure, RpcUnavailable):
        return FALLBACK_DESCRIBE, False
    cache.update(at=time.monotonic(), value=described)
    return described, True


def stored_reactions() -> list[Reaction]:
    query = select(Reaction).order_by(Reaction.name, Reaction.id)
    if not current_user.is_staff:
        # Examples (no owner) and the user's own reactions; others' formulas stay private.
        query = query.where((Reaction.owner_id.is_(None)) | (Reaction.owner_id == current_user.id))
    return list(db().scalars(query))


def _fill_choices(form: RequestForm, described: dict[str, Any]) -> list[Reaction]:
    reactions = stored_reactions()
    form.reaction_id.choices = [SelectChoice(r.id, f"{r.name} (#{r.id})") for r in reactions]
    # First choice: what the reaction's configuration says (its metric, in any of the forms
    # docs/language.md lists; its optimizer with its options), so an uploaded file runs as
    # written unless the user picks otherwise.
    form.metric.choices = [SelectChoice(FROM_CONFIG, "as the configuration says")] + [
        SelectChoice(k, f"{k}: {v}") for k, v in described["metrics"].items()
    ]
    default = described.get("default_optimizer")
    form.optimizer.choices = [
        SelectChoice(FROM_CONFIG, f"as the configuration says (else {default})")
    ] + [SelectChoice(o, o) for o in described["optimizers"]]
    if not form.is_submitted():
        form.optimizer.data = FROM_CONFIG
        preferred = [r for r in reactions if "cspbbr3" in r.name.lower().replace(" ", "")]
        if preferred:  # the oldest: the same choice whatever the database's name collation
            form.reaction_id.data = min(preferred, key=lambda r: r.id).id
    return reactions


def _space(form: RequestForm) -> dict[str, dict[str, Any]]:
    """The search-space rows the user filled in: {name: {bound: [lo, hi], dx}}, or
    {name: {fixed: value}} for a row whose two bounds are equal (a constant, not searched)."""
    out: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(form.space.entries, start=1):
        name = (row.form.name.data or "").strip().lstrip("$")
        if not name:
            continue
        lo, hi, dx = row.form.low.data, row.form.high.data, row.form.dx.data
        if lo is None or hi is None:
            raise ValueError(f"search space row {index} ({name}): give both bounds")
        if lo > hi:
            raise ValueError(f"search space row {index} ({name}): lower bound must be below upper")
        if lo == hi:
            out[name] = {"fixed": _num(lo)}
            continue
        spec: dict[str, Any] = {"bound": [_num(lo), _num(hi)]}
        if dx is not None:
            if dx < 0:
                raise ValueError(
                    f"search space row {index} ({name}): resolution must be >= 0 (0: continuous)"
                )
            spec["dx"] = _num(dx)
        out[name] = spec
    return out


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _stored_config(
    reactions: list[Reaction], reaction_id: int, space: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    reaction = next((r for r in reactions if r.id == reaction_id), None)
    if reaction is None:
        raise ValueError("choose one of the stored reactions")
    config = json.loads(json.dumps(reaction.config))  # a deep copy we may edit
    params = config.setdefault("param", {})
    for name, spec in space.items():
        if name not in params:
            raise ValueError(f"the reaction has no parameter {name!r}; known: {', '.join(params)}")
        if "fixed" in spec:
            params[name]["default"], params[name]["var"] = spec["fixed"], 0
            continue
        params[name]["bound"] = spec["bound"]
        params[name]["var"] = 1
        low, high = spec["bound"]
        default = params[name].get("default")
        if not isinstance(default, int | float) or not low <= default <= high:
            # the user moved the bounds, not the start value: start in the middle of theirs
            params[name]["default"] = _num(Decimal(str((low + high) / 2)))
        if "dx" in spec:
            params[name]["dx"] = spec["dx"]
    return config


def _submission(form: RequestForm, reactions: list[Reaction]) -> dict[str, Any]:
    """The named params of request.submit; ValueError with a message for the form."""
    params: dict[str, Any] = {
        "target": {"metric": form.metric.data} if form.metric.data != FROM_CONFIG else None,
        "budget": form.budget.data,
        "optimizer": form.optimizer.data or None,
        "seed": form.seed.data or 0,
        "name": form.name.data or None,
    }
    _plan(form, params)
    source = form.source.data
    # The rows belong to a stored reaction or a formula; an uploaded file carries its own space.
    space = _space(form) if source in ("stored", "formula") else {}
    if source == "stored":
        params["config"] = _stored_config(reactions, form.reaction_id.data, space)
        if form.name.data:
            params["config"]["name"] = form.name.data
    elif source == "formula":
        if not (form.formula.data or "").strip():
            raise ValueError("write a formula")
        try:
            header = formula_space(form.formula.data)
        except LanguageError as exc:
            message = f"formula: line {exc.line}, column {exc.column}: {exc.message}"
            raise ValueError(message) from None
        if not any("bound" in spec for spec in {**header, **space}.values()):
            try:  # a broken formula is the first thing to say (H[400] before a missing space)
                compile_formula(form.formula.data)
            except LanguageError as exc:
                message = f"formula: line {exc.line}, column {exc.column}: {exc.message}"
                raise ValueError(message) from None
            raise ValueError(
                "a formula needs its search space: fill in at least one variable with two "
                "different bounds (equal bounds hold a variable fixed), or write it in the "
                "formula as '# vary T from 90 to 180 step 0.5' lines"
            )
        # The rows over the formula's own "# vary"/"# fix" lines: the core merges them.
        params["formula"], params["space"] = form.formula.data, space
    else:
        upload = form.config_file.data
        if upload is None or not getattr(upload, "filename", ""):
            raise ValueError("choose a configuration file to upload")
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("the file must be UTF-8 text (JSON or a formula)") from exc
        if _is_formula_file(upload.filename, text):
            # a formula file carries its space in its own "# vary"/"# fix" lines
            params["formula"] = text
        else:
            params["config"] = text
    return params


def _plan(form: RequestForm, params: dict[str, Any]) -> None:
    """Who chooses the experiments, and the target: fields of request.submit; the core checks
    the points against the search space and the target against the metrics."""
    if (form.target_json.data or "").strip():
        try:
            target = json.loads(form.target_json.data, parse_constant=_no_constant)
        except ValueError as exc:
            raise ValueError(f"target JSON: {exc}") from None
        if not isinstance(target, dict):
            raise ValueError('target JSON: must be an object {"metric": ...}')
        params["target"] = target
    if form.goal.data is not None or form.confirm.data is not None:
        if params["target"] is None:
            raise ValueError("choose a target to set a goal (the goal is a value of its reward)")
        if form.goal.data is None:
            raise ValueError("give the goal the replicates should confirm")
        params["target"]["goal"] = _num(form.goal.data)
        if form.confirm.data is not None:
            params["target"]["confirm"] = form.confirm.data
    plan = form.plan.data
    if plan in DESIGNS:
        params["design"] = {"kind": plan, "levels": form.levels.data or 3}
    elif plan == "points":
        text = form.points_text.data or ""
        upload = form.points_file.data
        if upload is not None and getattr(upload, "filename", ""):
            try:
                text = upload.read(MAX_CSV_BYTES + 1).decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("points file: must be UTF-8 CSV text") from None
        if not text.strip():
            raise ValueError("give the points: a CSV table (a header of names, one point per line)")
        try:
            params["points"] = rows_from_csv(text)
        except PlanError as exc:
            raise ValueError(f"points: {exc}") from None
    elif plan != "optimizer":
        raise ValueError("choose who chooses the experiments")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _is_formula_file(filename: str, text: str) -> bool:
    """A ``.formula`` file, or text that is not a JSON document at all (a configuration starts
    with '{'); anything else goes to the core as JSON, which says what is wrong with it."""
    if filename.lower().endswith(".formula"):
        return True
    return not filename.lower().endswith(".json") and not text.lstrip().startswith("{")


@bp.route("/requests/new", methods=["GET", "POST"])
@login_required
def new_request() -> str | Response | tuple[str, int]:
    form = RequestForm()
    described, core_up = core_describe()
    reactions = _fill_choices(form, described)
    if not form.is_submitted() and form.budget.data is None:
        form.budget.data = 120
    if not form.is_submitted() and request.args.get("target"):
        # e.g. the calibration page's "Use as target": shown, checked by the core on submit
        form.target_json.data = request.args["target"][:4000]
    error: dict[str, Any] | None = None
    if form.validate_on_submit():
        try:
            reply = web().core.call(
                "request.submit", as_user=current_user.username, **_submission(form, reactions)
            )
        except ValueError as exc:
            error = {"field": "form", "message": str(exc)}
        except RpcFailure as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            error = {"field": data.get("field", "request"), "message": exc.message, **data}
        except RpcUnavailable:
            error = {"field": "core", "message": "the core is not reachable; try again shortly"}
        else:
            flash(
                f"Request {reply['id']} accepted: position {reply['position']} in the queue.",
                "success",
            )
            return redirect(url_for("runs.run_page", request_id=reply["id"]))
    status = 400 if error or form.errors else 200
    page = render_template("submit/new.html", form=form, error=error, core_up=core_up)
    return page, status


@bp.route("/api/formula/check", methods=["POST"])
@login_required
def check_formula() -> Response:
    """Compile a formula as the user types: {"formula": str} -> ok + codes, or the error."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("formula"), str):
        return jsonify(ok=False, error={"message": 'send JSON {"formula": "..."}'}), 400
    formula = body["formula"]
    if len(formula) > MAX_FORMULA_CHARS:
        return jsonify(ok=False, error={"message": "the formula is too long"}), 400
    if not formula.strip():
        return jsonify(ok=False, error={"line": 1, "column": 1, "message": "empty formula"})
    try:
        space = formula_space(formula)
        config = load_config(formula_config(formula, space)) if space else None
        program = compile_formula(formula, config)
    except LanguageError as exc:
        return jsonify(ok=False, error=exc.to_dict())
    return jsonify(
        ok=True,
        variables=sorted(program.variables),
        codes=[inst.get("code") for inst in program.instructions],
        space=space,  # the formula's own vary/fix lines, for the search-space rows
    )


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> tuple[Response | str, int]:
    """An upload over the limit: the form again, saying the limit (the body is not read, so
    the typed fields are gone; submit.js refuses such a file before it is sent)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    shown = f"{limit / 1048576:g} MB" if limit >= 1048576 else f"{limit / 1024:g} kB"
    message = (
        f"the upload is larger than the limit of {shown}; "
        "a reaction configuration or formula file is a few kB"
    )
    if request.endpoint != "submit.new_request" or not current_user.is_authenticated:
        return render_template("error.html", code=413, message=message), 413
    form = RequestForm(formdata=None)
    described, core_up = core_describe()
    _fill_choices(form, described)
    form.budget.data = 120
    error = {"field": "config_file", "message": message}
    return render_template("submit/new.html", form=form, error=error, core_up=core_up), 413


@bp.route("/reactions/<int:reaction_id>.json")
@login_required
def reaction_json(reaction_id: int) -> Response:
    """A stored reaction's search space and formula, to prefill the form."""
    reaction = next((r for r in stored_reactions() if r.id == reaction_id), None)
    if reaction is None:
        return jsonify(error="no such reaction"), 404
    params = (reaction.config or {}).get("param") or {}
    space = {
        name: {"bound": spec.get("bound"), "dx": spec.get("dx")}
        for name, spec in params.items()
        if isinstance(spec, dict) and spec.get("var", 1) and "bound" in spec
    }
    return jsonify(
        id=reaction.id,
        name=reaction.name,
        formula=reaction.formula,
        codes=[
            step.get("code")
            for step in (reaction.config or {}).get("experiment") or []
            if isinstance(step, dict)
        ],
        space=space,
        metric=(reaction.config or {}).get("metric"),
        max_expts=(reaction.config or {}).get("max_expts"),
    )

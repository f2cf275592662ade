"""Web hardening not covered by tests/cloud/test_auth.py: CSRF on *every* state-changing route
(found from the URL map, so a route added later is covered too), and no path from user input to
a shell, eval or hand-built SQL anywhere in the code that serves users."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cloud import create_app
from tests.security.helpers import ROOT

SERVED_PACKAGES = ("cloud", "maosic", "hardware_interface", "user_control")
BANNED_CALLS = {"eval", "exec", "compile", "__import__"}
SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"),
               ("subprocess", "getstatusoutput")}  # fmt: skip
RAW_SQL_CALLS = {"text", "exec_driver_sql", "execute"}


@pytest.fixture
def csrf_app(db_url, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "csrf-test",
            "CORE_TOKEN": "unused-installation-token",
            "LOG_KEY_FILE": str(tmp_path / "log.key"),
            "CORE_URL": "http://127.0.0.1:9/",
            "HARDWARE_URL": "http://127.0.0.1:9/",
        }
    )
    yield app
    app.extensions["maosic_web"].engine.dispose()


def test_every_state_changing_route_requires_a_csrf_token(csrf_app):
    client = csrf_app.test_client()
    checked = []
    for rule in csrf_app.url_map.iter_rules():
        unsafe = (rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}
        if not unsafe or rule.endpoint == "static":
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
        for method in sorted(unsafe):
            reply = client.open(path, method=method, data={"x": "1"})
            assert reply.status_code == 400, (method, path, reply.status_code)
            assert "form expired" in reply.get_data(as_text=True), (method, path)
            checked.append((method, rule.rule))
    # the routes the issue names are among them (guards against an empty URL map)
    paths = {p for _, p in checked}
    assert {"/login", "/register", "/requests/new", "/operator/hardware/command"} <= paths


def _python_files() -> list[Path]:
    files = []
    for package in SERVED_PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return files


def _call_name(node: ast.Call) -> tuple[str | None, str]:
    func = node.func
    if isinstance(func, ast.Name):
        return None, func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        return owner, func.attr
    return None, ""


def _is_built_string(node: ast.AST) -> bool:
    """An f-string, a % or + expression, or .format(): SQL that could carry user input."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    )


def find_dangerous_calls(source: str, filename: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        owner, name = _call_name(node)
        where = f"{filename}:{node.lineno}"
        if owner is None and name in BANNED_CALLS:
            problems.append(f"{where}: {name}()")
        if (owner, name) in SHELL_CALLS:
            problems.append(f"{where}: {owner}.{name}() runs a shell")
        for kw in node.keywords:
            if kw.arg == "shell" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                problems.append(f"{where}: shell={ast.unparse(kw.value)}")
        if name in RAW_SQL_CALLS and node.args and _is_built_string(node.args[0]):
            problems.append(f"{where}: {name}() with SQL built from a string expression")
    return problems


def test_the_scanner_catches_what_it_should():
    bad = (
        "eval(x)\nos.system(cmd)\nsubprocess.run(c, shell=True)\n"
        "conn.execute(text(f'SELECT {name}'))\nconn.exec_driver_sql('DROP ' + t)\n"
        "s.execute('SELECT %s' % v)\n"
    )
    found = find_dangerous_calls(bad, "bad.py")
    assert len(found) == 6, found
    assert find_dangerous_calls("conn.execute(text('SELECT 1'))\nrun(['ls'])\n", "ok.py") == []


def test_no_shell_eval_or_built_sql_in_served_code():
    files = _python_files()
    assert len(files) > 40
    problems = []
    for path in files:
        problems += find_dangerous_calls(path.read_text(encoding="utf-8"), str(path))
    assert problems == []

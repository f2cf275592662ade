"""`submit --help` names the optimizer the core really runs by default (issue 20, item 14)."""

from __future__ import annotations

import re
import subprocess
import sys

import maosic.optimize.registry as registry
from tests.user_control.helpers import REPO, run_process
from user_control.parser import command_parser


def _optimizer_help(text: str) -> str:
    """The --optimizer entry of a help text, on one line (argparse wraps it at any word)."""
    entry = text.split("--optimizer OPTIMIZER\n", 1)[1].split("\n  --", 1)[0]
    return " ".join(entry.split())


def test_submit_help_names_the_registry_default_and_every_optimizer(tmp_path):
    result = run_process(["submit", "--help"], tmp_path)
    assert result.status == 0, result.err
    entry = _optimizer_help(result.out)
    assert f"(default: the configuration's, else {registry.DEFAULT_OPTIMIZER})" in entry, entry
    named = re.split(r", | or ", entry.split(" (default", 1)[0])
    assert named[0] == registry.DEFAULT_OPTIMIZER
    assert sorted(named) == sorted(registry.OPTIMIZERS)
    assert "snobfit (default)" not in result.out


def test_the_help_follows_the_registry_not_a_copy_of_it(monkeypatch):
    monkeypatch.setattr(registry, "DEFAULT_OPTIMIZER", "bayes")
    _, parsers = command_parser()
    entry = _optimizer_help(parsers["submit"].format_help())
    assert entry.startswith("bayes, ") and "else bayes)" in entry, entry


def test_commands_start_without_importing_the_optimizers():
    # The registry is read only when the help is shown: numpy and scipy take most of a second
    # to import, which every `pump fill` would otherwise wait for.
    probe = (
        "import sys; from user_control.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('maosic.optimize', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr

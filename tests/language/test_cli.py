"""The `compile` command: output, exit status 0/2, one positioned message on stderr."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from maosic.language.cli import main

ROOT = Path(__file__).resolve().parents[2]
CSPBBR3 = str(ROOT / "examples" / "cspbbr3.json")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_formula_prints_instruction_codes() -> None:
    code, out, err = run("(R1·SP1[0.1, 0, 0.05] + R2·SP2[0.1, 0, 0.05]) x H[130] | ABS-CD[100]")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "PUMP_INIT pump=SP1"
    assert lines[4].startswith("HEAT module=H1 setpoint_C=130 ")
    # no CR step: the sample is carried to the cuvette spectrometer and then to waste
    assert lines[-4:] == [
        "MOVE module=CR1 position=sampler",
        "MOVE module=CR1 position=cd",
        "ABS-CD module=SPEC1 integration_ms=100",
        "MOVE module=CR1 position=waste",
    ]


def test_json_prints_the_plan_with_bindings() -> None:
    code, out, _ = run("R1·SP1[0.1, 0, 0.05] × H[$T]", "--json", "--bind", "T=120")
    assert code == 0
    plan = json.loads(out)
    assert plan[2] == {
        "method": "heater.set",
        "params": {"setpoint_C": 120.0, "ramp_C_min": 10.0, "wait_stable": True,
                   "timeout_s": 1800.0},
    }  # fmt: skip


def test_config_validates_and_compiles() -> None:
    code, out, err = run("--config", CSPBBR3)
    assert code == 0 and err == ""
    assert out.splitlines()[6].startswith("HEAT module=H1 setpoint_C=$T")
    code, out, _ = run("--config", CSPBBR3, "--json", "--bind", "C=0.4")
    parallel = next(c for c in json.loads(out) if c["method"] == "pump.parallel")
    assert parallel["params"]["moves"][0]["rate_mL_min"] == round(0.15 * 0.4 / 3.6, 12)


def test_formula_file(tmp_path: Path) -> None:
    path = tmp_path / "f.formula"
    path.write_text("R1·SP1[0.1, 0, 0.05]\n", encoding="utf-8")
    assert run("--file", str(path))[0] == 0


def test_error_exit_2_with_line_column_and_caret() -> None:
    code, out, err = run("R1·SP1[0.1, 0, 0.05] × H[999]")
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("error: formula: line 1, column 26:") and "T = 999" in lines[0]
    assert lines[2].index("^") == lines[1].index("999")


def test_config_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "name": 3\n}\n', encoding="utf-8")
    code, _, err = run("--config", str(bad))
    assert code == 2 and f"{bad}: line 2, column 11" in err


def test_usage_errors_exit_2() -> None:
    assert run()[0] == 2
    assert run("R1·SP1[0.1,0,1]", "--config", CSPBBR3)[0] == 2
    assert run("R1·SP1[$v,0,1]", "--json", "--bind", "v")[0] == 2
    assert run("--config", "/nonexistent/x.json")[0] == 2
    code, _, err = run("R1·SP1[$v,0,1]", "--json")
    assert code == 2 and "$v" in err


def test_runs_as_a_subprocess() -> None:
    script = "import sys; from maosic.language.cli import main; sys.exit(main(sys.argv[1:]))"
    ok = subprocess.run(
        [sys.executable, "-c", script, "R1·SP1[0.1, 0, 0.05]"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0 and "PUMP sp" not in ok.stdout and "FILL" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-c", script, "R1·"], capture_output=True, text=True, cwd=ROOT,
        timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("error:") == 1 and "Traceback" not in bad.stderr

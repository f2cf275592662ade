"""``export ID --ro-crate DIR`` and ``import-crate PATH`` against a real core (issue 21)."""

from __future__ import annotations

import json

from rocrate.rocrate import ROCrate

from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for
from tests.user_control.helpers import run, run_process


def test_export_then_import_through_the_terminal(stack, tmp_path):
    url = stack.core_url
    config = dict(cspbbr3_config(), optimizer="random")
    first = rpc(url, "request.submit", as_user="demo", config=config, budget=2, seed=4)["id"]
    assert wait_for(url, first, {"done", "failed"}, 180)["status"] == "done"
    core = ["--core-url", url, "--user", "demo"]

    folder = tmp_path / "crate"
    exported = run_process([*core, "export", str(first), "--ro-crate", str(folder)], tmp_path)
    assert exported.status == 0, exported.err
    assert f"request {first}: RO-Crate" in exported.out, exported.out
    crate = ROCrate(folder)
    listed = [e.id for e in crate.data_entities]
    assert "experiments.json" in listed and all((folder / n).is_file() for n in listed)
    assert len(json.loads((folder / "experiments.json").read_text())) == 2
    # the owner's crate carries the decrypted audit log: the core has the log key
    audit = json.loads((folder / "audit" / "hardware-commands.json").read_text())
    assert audit and any(c.get("method") == "heater.set" for c in audit), str(audit)[:300]

    # a folder that is not empty is refused before anything is asked of the core
    again = run([*core, "export", str(first), "--ro-crate", str(folder)], tmp_path)
    assert again.status == 2 and "new or empty folder" in again.err, again.err

    imported = run([*core, "--json", "import-crate", str(folder)], tmp_path)
    assert imported.status == 0, imported.err
    new_id = json.loads(imported.out)["id"]
    assert new_id != first
    shown = json.loads(run([*core, "--json", "show", str(new_id)], tmp_path).out)
    assert shown["status"] == "done" and shown["owner"] == "demo"
    assert "imported from RO-Crate 'crate'" in shown["stop_reason"], shown
    assert len(shown["experiments"]) == 2

    # a broken crate is refused locally, naming the file and the place
    rows = json.loads((folder / "experiments.json").read_text())
    rows[0]["reward"] = "lots"
    (folder / "experiments.json").write_text(json.dumps(rows))
    broken = run([*core, "import-crate", str(folder)], tmp_path)
    assert broken.status == 2, broken.err
    assert "experiments.json[0].reward: must be a number" in broken.err, broken.err

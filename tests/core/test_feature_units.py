"""Every stored feature says its unit (issue 20, item 12): absorbance in OD, PL in counts,
wavelengths in nm, CD in mdeg; none is left NULL for someone reading the table in SQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from hardware_interface.server import start_daemon
from maosic.db.models import Feature
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from tests.core.campaign_helpers import worker
from tests.core.rpc_helpers import EXAMPLES


@pytest.mark.parametrize("chemistry", ["cspbbr3", "cs3cu2i5"])
def test_no_feature_without_a_unit(sessions, tmp_path, chemistry):
    config = json.loads((EXAMPLES / f"{chemistry}.json").read_text(encoding="utf-8"))
    daemon = start_daemon(sim=True, chemistry=chemistry, port=0, seed=1, speed=0.0, watchdog_s=0)
    try:
        rid = CoreService(sessions).submit(INSTALLATION, config=config, budget=1, seed=1)["id"]
        assert worker(sessions, daemon, tmp_path).run_once()
    finally:
        daemon.stop()
    assert CoreService(sessions).status(INSTALLATION, rid)["n_done"] == 1
    with sessions() as session:
        features = list(session.scalars(select(Feature)))
    assert features
    assert [f.name for f in features if not f.unit] == []
    units = {f.name: f.unit for f in features}
    if chemistry == "cspbbr3":
        assert units["exciton_absorbance"] == "OD" and units["cd_at_exciton_mdeg"] == "mdeg"
    else:
        assert units["pl_intensity"] == "counts" and units["abs_300nm"] == "OD"

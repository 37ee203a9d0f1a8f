"""pages.forms: the Map page's settings round-trip through MapParams, old maps included (issue 16)."""

from __future__ import annotations

import json

from core.engines.local import MapParams
from core.stages.cluster import DEFAULT_ASSIGN_NOISE, ClusterParams


OLD = {"min_cluster_size": None, "min_samples": None, "method": "eom", "epsilon": 0.0}


def test_map_page_settings_round_trip():
    from pages.forms import MAP_SETTINGS, settings_from_params

    assert MAP_SETTINGS["join_noise"] is True and MAP_SETTINGS["assign_noise"] == DEFAULT_ASSIGN_NOISE
    old = MapParams.from_dict({**json.loads(json.dumps(MapParams().to_dict())),
                               "cluster": dict(OLD)})
    s = settings_from_params(old)
    assert s["join_noise"] is False and s["assign_noise"] == DEFAULT_ASSIGN_NOISE
    s = settings_from_params(MapParams(cluster=ClusterParams(assign_noise=0.2)))
    assert s["join_noise"] is True and s["assign_noise"] == 0.2

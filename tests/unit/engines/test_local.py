"""core.engines.local: MapParams (what a map records, old dicts)."""

from __future__ import annotations

import json

from core.engines.local import MapParams


def test_map_params_record_the_algorithm():
    d = MapParams().to_dict()
    assert d["cluster"]["algorithm"] == "hdbscan"
    old = json.loads(json.dumps(d))
    del old["cluster"]["algorithm"]
    assert MapParams.from_dict(old).cluster.algorithm == "hdbscan"

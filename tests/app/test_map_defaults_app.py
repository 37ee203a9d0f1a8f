"""The Map page shows a map's noise handling (issue 16's map defaults): the *Unclustered rows join
their most likely cluster* checkbox and its threshold come from the map shown (AppTest)."""

from __future__ import annotations

import pytest

from core.engines.local import MapParams
from core.stages.cluster import DEFAULT_ASSIGN_NOISE, ClusterParams


@pytest.mark.parametrize("assign", [None, 0.2])
def test_map_page_shows_the_maps_noise_handling(tmp_path, monkeypatch, assign):
    import pyarrow as pa

    from core.engines.local import build_map
    from core.stages.dataset import TextSpec
    from core.stages.ingest import IngestParams, ingest
    from core.stages.project import ProjectParams
    from core.store.workspace import Workspace
    from pages import state as S
    from tests.app_fixtures import no_errors, open_page
    from tests.fakes import BagOfWordsEncoder, write_table

    words = ["apples", "trains", "violins", "glaciers"]
    rows = [f"{w} note {i} about {w} and more {w}" for w in words for i in range(15)]
    ws = Workspace(tmp_path / "ws")
    path = write_table(pa.table({"text": rows}), tmp_path / "d.parquet")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    build_map(ws, MapParams(project=ProjectParams(n_neighbors=5, seed=1),
                            cluster=ClusterParams(min_cluster_size=5, assign_noise=assign)),
              encoder=BagOfWordsEncoder())
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    at = open_page(S.PAGE_MAP, 120)
    no_errors(at)
    box = at.checkbox(key=S.W_MAP_PREFIX + "join_noise")
    thr = at.number_input(key=S.W_MAP_PREFIX + "assign_noise")
    assert box.value is (assign is not None) and "most likely cluster" in box.label
    assert thr.value == pytest.approx(assign if assign is not None else DEFAULT_ASSIGN_NOISE)
    assert thr.disabled is (assign is None)

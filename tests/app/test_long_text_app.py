"""The Data and Map pages say how many texts are over the model's token limit (issue 12 kind 4)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyarrow.parquet import write_table

from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.store.workspace import Workspace
from tests.builders import WORDS, long_pair as _long_pair


def _ingest(ws: Workspace, texts, path: Path) -> None:
    write_table(pa.table({"k": list(range(len(texts))), "text": list(texts)}), path)
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))


def test_data_and_map_pages_count_texts_over_the_limit(tmp_path, monkeypatch):
    from core.stages.embed import EmbedParams as EP
    from core.engines.local import MapParams, build_map
    from core.stages.project import ProjectParams
    from pages import state as S
    from tests.fakes import BagOfWordsEncoder
    from tests.app_fixtures import no_errors, open_page

    a, b = _long_pair()
    rows = [a, b] + [f"short prompt number {i} about {w}" for i, w in enumerate(WORDS[:20])]
    ws = Workspace(tmp_path / "ws")
    _ingest(ws, rows, tmp_path / "d.parquet")
    build_map(ws, MapParams(EP(long_text="chunk"), ProjectParams(n_neighbors=5, seed=1)), encoder=BagOfWordsEncoder())
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    at = open_page(S.PAGE_DATA, 120)
    no_errors(at)
    metric = [m for m in at.metric if "token limit" in m.label]
    assert len(metric) == 1 and metric[0].value == "2" and "256" in metric[0].label
    at = open_page(S.PAGE_MAP, 120)
    no_errors(at)
    assert at.selectbox(key=S.W_MAP_PREFIX + "long_text").value == "chunk"
    assert any("2 of 22 texts exceed the model's limit of 256 tokens" in i.value and "windows" in i.value
               for i in at.info), [i.value for i in at.info]

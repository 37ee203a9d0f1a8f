"""How many of the current dataset's texts exceed a model's token limit (cached per dataset and model)."""

from __future__ import annotations

from core.encoders.long_text import LongTextCount, count_long, max_text_chars, model_limit
from core.stages.dataset import current_dataset
from core.store.workspace import DATASET_TABLE, Workspace, fetch_arrow


def count_dataset(ws: Workspace, model: str = "all-MiniLM-L6-v2") -> LongTextCount:
    """:func:`count_long` over the workspace's current dataset (embeddable texts), for
    ``model``'s tokenizer; cached in the workspace by (dataset key, model).  Only texts
    longer than the limit in UTF-8 bytes are read from DuckDB."""
    info = current_dataset(ws)
    lim = model_limit(model)
    key = f"long_text:{info.key}:{model}:{max_text_chars()}"
    cached = ws.get_meta(key)
    if cached:
        return LongTextCount(**cached)
    floor = lim.content if lim is not None else max_text_chars()
    with ws.connect() as con:
        n = con.execute(f"SELECT count(*) FROM {DATASET_TABLE} WHERE sieve_text_ok").fetchall()[0][0]
        tbl = fetch_arrow(con, f"SELECT sieve_text FROM {DATASET_TABLE} WHERE sieve_text_ok AND strlen(sieve_text) > ?",
                          [floor])
    result = count_long(tbl.column(0).to_pylist(), lim)
    result.n_texts = int(n)
    ws.set_meta(key, result.to_dict())
    return result

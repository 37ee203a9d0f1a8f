"""AppTest (no browser) tests of issue 14 part A: what a new user meets on the pages
(defaults, estimates, stale messages, a workspace that moved on, small layout faults).
Browser-only behaviour (slider responsiveness, the drawn box surviving a highlight) is
in tests/browser/test_tuning.py."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pages import common as C

from pages import state as S
from tests.app_fixtures import (  # noqa: F401  (fixtures)
    build_small_map,
    empty_env,
    map_env,
    new_app,
    no_errors,
    open_page,
    send_selection,
    small_map,
)


T = 180  # seconds per script run: the shared test machine can be heavily loaded


def _metric(at, label: str):
    found = [m for m in at.metric if m.label.startswith(label)]
    assert found, [m.label for m in at.metric]
    return found[0]


# -- Data page -------------------------------------------------------------------------------


def test_template_prefills_the_text_column_not_the_ids(empty_env, tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": ["a1", "b2", "c3"], "text": ["first text", "second text", "third"]}), path)
    at = new_app(T).run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(path)).run()
    at.radio(key="w.text_mode").set_value("Template").run()
    no_errors(at)
    assert at.text_input(key="w.template").value == "{text}"


def test_texts_to_embed_counts_distinct_texts(empty_env):
    from core.stages.dataset import current_dataset, load_texts
    from core.store.workspace import Workspace

    at = new_app(T).run()
    no_errors(at)
    ws = Workspace(empty_env)
    info = current_dataset(ws)
    _, _, hashes = load_texts(ws)
    m = _metric(at, "Texts to embed")
    assert m.value == f"{len(set(hashes)):,}"
    assert info.n_duplicates > 0 and m.value != f"{info.n_embeddable:,}"  # the sample has duplicates
    assert "embedded once" in m.help


def test_sample_banner_stays_on_the_data_page(empty_env):
    at = new_app(T).run()
    assert any("choose another file" in s.value for s in at.success)
    at.switch_page(S.PAGE_MAP).run()
    no_errors(at)
    assert not any("choose another file" in s.value for s in at.success)


def test_failed_load_leaves_no_progress_bar(empty_env, tmp_path, monkeypatch):
    import core.stages.ingest

    path = tmp_path / "rows.csv"
    path.write_text("text\nhello world\nsecond row\n")

    def failing_ingest(ws, params, progress=None):
        progress(1, 3, "reading 1 file(s)")
        raise C.SieveError(f"{path}: line 3 is malformed")

    at = new_app(T).run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(path)).run()
    monkeypatch.setattr(core.stages.ingest, "ingest", failing_ingest)
    at.button(key=S.W_LOAD).click().run()
    assert not at.exception
    assert any("malformed" in e.value for e in at.error)
    assert not list(at.get("progress"))


# -- Map page --------------------------------------------------------------------------------


def test_map_page_estimates_the_first_map_from_the_row_count(empty_env):
    from core.runtime.eta import estimate_map_seconds

    at = new_app(T).run()
    at.switch_page(S.PAGE_MAP).run()
    no_errors(at)
    msg = next(i.value for i in at.info if "No map of this dataset yet" in i.value)
    assert "on this machine for" in msg and "distinct texts" in msg and "about" in msg
    assert "about a minute" not in msg
    assert estimate_map_seconds(30_000, "onnx-int8") > estimate_map_seconds(3_000, "onnx-int8")


def test_cluster_touched_table_is_full_width_below_the_map(map_env):
    _, data = map_env
    at = open_page(S.PAGE_MAP, T)
    lo, hi = data.xy.min(axis=0) - 1, data.xy.max(axis=0) + 1
    at = send_selection(at, {"points": [], "box": [{"x": [float(lo[0]), float(hi[0])],
                                                    "y": [float(lo[1]), float(hi[1])]}], "lasso": []})
    no_errors(at)
    touched = [d for d in at.tabs[0].dataframe if list(d.value.columns) == ["name", "count", "share"]]
    assert len(touched) == 1 and len(touched[0].value) == len(np.unique(data.labels))
    for col in at.columns:  # not squeezed into the narrow side column
        assert not [d for d in col.dataframe if list(d.value.columns) == ["name", "count", "share"]]


# -- Budget page -----------------------------------------------------------------------------


def test_default_policy_and_pick_are_the_harness_winner_in_the_app_and_the_cli(map_env):
    # sqrt + facility trained best on bench/selection_quality.py (docs/SELECTION.md)
    from core.cli.options import SELECT_OPTS
    from core.selection import DEFAULT_PICK, DEFAULT_POLICY

    assert (DEFAULT_POLICY, DEFAULT_PICK) == ("sqrt", "facility")
    assert SELECT_OPTS["pick"].default == DEFAULT_PICK and SELECT_OPTS["policy"].default == DEFAULT_POLICY
    at = open_page(S.PAGE_BUDGET, T)
    no_errors(at)
    assert at.selectbox(key=S.W_PICK).value == DEFAULT_PICK
    assert at.selectbox(key=S.W_POLICY).value == DEFAULT_POLICY
    assert at.session_state[S.K_SELECT_PARAMS].pick == DEFAULT_PICK
    assert at.session_state[S.K_SELECT_PARAMS].policy == DEFAULT_POLICY


def test_metrics_are_explained_by_what_the_policy_aims_at(map_env):
    at = open_page(S.PAGE_BUDGET, T)
    no_errors(at)
    jsd = _metric(at, "Jensen")
    assert jsd.proto.color == jsd.proto.MetricColor.GRAY  # sqrt (balanced) policy: diverging is the goal, never red
    assert any("should" in c.value or "by design" in c.value for c in at.caption if "Policy sqrt" in c.value)
    div = _metric(at, "Diversity")
    assert div.delta.startswith("+")  # the facility pick beats random subsets on spread
    assert div.proto.color == div.proto.MetricColor.GREEN
    table = next(d.value for d in at.dataframe if "what this subset aims at" in d.value.columns)
    jsd_row = table.loc[[i for i in table.index if i.startswith("JS divergence")][0]]
    assert jsd_row["better"] == "not a goal here" and "by design" in jsd_row["what this subset aims at"]
    # A random pick does not aim at spread: its diversity difference is grey, never red.
    at.selectbox(key=S.W_PICK).set_value("random").run()
    no_errors(at)
    assert _metric(at, "Diversity").proto.color == _metric(at, "Diversity").proto.MetricColor.GRAY
    # A proportional policy aims at the full mix: there lower JS divergence is better.
    at.selectbox(key=S.W_POLICY).set_value("proportional").run()
    jsd = _metric(at, "Jensen")
    assert jsd.proto.color != jsd.proto.MetricColor.GRAY or jsd.delta.startswith(("+0.000", "-0.000"))


def test_sliders_help_says_when_they_are_offered(map_env):
    at = open_page(S.PAGE_BUDGET, T)
    assert f"at most {12} clusters" in at.radio(key=S.W_MODE).help


# -- Export page -----------------------------------------------------------------------------


def test_saved_message_goes_when_the_budget_changes(map_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(tmp_path))
    at = open_page(S.PAGE_BUDGET, T)
    at.switch_page(S.PAGE_EXPORT).run()
    at.button(key=S.W_SAVE).click().run()
    no_errors(at)
    assert any(s.value.startswith("Saved ") for s in at.success)
    at.run()
    assert any(s.value.startswith("Saved ") for s in at.success)  # same selection: still true
    at.switch_page(S.PAGE_BUDGET).run()
    at.number_input(key=S.W_BUDGET_NUMBER).set_value(33)
    at.button(key=S.W_BUDGET_APPLY).click().run()
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    assert not any(s.value.startswith("Saved ") for s in at.success)


# -- a workspace that moved on (issue 14 A4) ---------------------------------------------------


@pytest.fixture
def own_map(tmp_path, monkeypatch):
    ws, data = build_small_map(tmp_path / "ws", n_rows=300, seed=5)
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    other = tmp_path / "other.csv"
    other.write_text("prompt\n" + "\n".join(f"another prompt number {i}" for i in range(50)) + "\n")
    return ws, data, other


def _cli_loads_another_file(ws, path) -> None:
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec

    ingest(ws, IngestParams(str(path), TextSpec(column="prompt")))


def test_session_keeps_its_dataset_when_the_workspace_moves_on(own_map):
    ws, data, other = own_map
    pins = {int(x) for x in data.row_ids[:4]}
    at = open_page(S.PAGE_MAP, T, state={S.K_PINS: set(pins), S.K_PINBAN_DATASET: data.dataset.key})
    no_errors(at)
    assert list(at.get("plotly_chart"))
    _cli_loads_another_file(ws, other)
    for page in (S.PAGE_MAP, S.PAGE_BUDGET, S.PAGE_EXPORT, S.PAGE_DATA):
        at.switch_page(page).run()
        assert not at.exception
        assert any("moved on" in w.value for w in at.warning), page
        assert not list(at.get("plotly_chart")) and not at.table  # nothing of the other dataset
    assert at.session_state[S.K_PINS] == pins
    at.button(key=S.W_RELOAD_DATASET).click().run()
    no_errors(at)
    at.switch_page(S.PAGE_MAP).run()
    no_errors(at)
    assert not any("moved on" in w.value for w in at.warning)
    assert list(at.get("plotly_chart"))  # its map is back (from the cache)
    assert at.session_state[S.K_PINS] == pins


def test_session_can_switch_to_the_new_dataset(own_map):
    ws, data, other = own_map
    at = open_page(S.PAGE_MAP, T, state={S.K_PINS: {int(data.row_ids[0])}, S.K_PINBAN_DATASET: data.dataset.key})
    _cli_loads_another_file(ws, other)
    at.run()
    at.button(key=S.W_SWITCH_DATASET).click().run()
    no_errors(at)
    assert not any("moved on" in w.value for w in at.warning)
    assert any("No map of this dataset yet" in i.value for i in at.info)
    assert not at.session_state[S.K_PINS]  # the old dataset's pins are dropped


def test_first_map_says_what_it_waits_for(empty_env, tmp_path, monkeypatch):
    """A first Compute map with the int8 backend in a fresh cache dir: the status line says
    that the model is prepared once, then loaded (real packaged model, 40 rows)."""
    import streamlit as st

    from core.encoders.onnx import is_exported

    monkeypatch.setenv("SIEVE_CACHE_DIR", str(tmp_path / "fresh-cache"))
    assert not is_exported()
    labels: list[str] = []
    real_status = st.status

    def recording_status(label, *args, **kwargs):
        labels.append(label)
        box = real_status(label, *args, **kwargs)
        real_update = box.update

        def update(*, label=None, **kw):
            if label:
                labels.append(label)
            return real_update(label=label, **kw)

        box.update = update
        return box

    monkeypatch.setattr(st, "status", recording_status)
    path = tmp_path / "rows.csv"
    path.write_text("prompt\n" + "\n".join(f"how do I cook dish number {i} for {i % 4 + 2} people" for i in range(40))
                    + "\n")
    at = new_app(600).run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(path)).run()
    at.button(key=S.W_LOAD).click().run()
    at.switch_page(S.PAGE_MAP).run()
    at.session_state[S.W_MAP_PREFIX + "backend"] = "onnx-int8"
    at.session_state[S.W_MAP_PREFIX + "min_cluster_size"] = 5
    at.run()
    at.button(key=S.W_COMPUTE).click().run()
    no_errors(at)
    assert list(at.get("plotly_chart"))
    assert any("preparing the onnx int8 model (one time)" in x.lower() and "later maps skip this" in x for x in labels)
    assert any(x.startswith("Loading the model") for x in labels) and labels[-1] == "Model loaded."
    assert is_exported()

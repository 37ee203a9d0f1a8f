"""Cluster curation (core.curate): rename, merge, split; the workspace, the manifest and
``reproduce`` replay the edits (a small map built with a fake encoder, see app_fixtures)."""

from __future__ import annotations

import numpy as np
import pytest

from core.curate import apply_edits, normalise_edits, read_edits
from core.stages.naming import ClusterInfo
from core.store.workspace import SieveError

WORDS = {0: "invoice refund payment charge", 1: "python function loop error", 2: "garden tomato soil seed",
         3: "guitar chord melody song"}


def _planted(seed: int = 0):
    """Four planted groups in 5-D; HDBSCAN's stand-in labels put groups 2 and 3 in one cluster (2)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(5, dtype=np.float32)[:4] * 20
    group = np.repeat(np.arange(4), 30)
    points = (centres[group] + rng.normal(scale=0.5, size=(len(group), 5))).astype(np.float32)
    labels = np.where(group == 3, 2, group).astype(np.int32)
    labels[[5, 65]] = -1  # two unclustered rows
    texts = [f"{WORDS[g]} {w}" for g, w in zip(group, rng.integers(0, 1000, len(group)))]
    vectors = rng.normal(size=(len(group), 8)).astype(np.float32)
    row_ids = np.arange(len(group), dtype=np.int64) * 2
    ids, counts = np.unique(labels, return_counts=True)
    names = {-1: "unclustered", 0: "refunds-ish", 1: "code-ish", 2: "hobbies"}
    clusters = [ClusterInfo(int(c), names[int(c)], [names[int(c)]], int(n), []) for c, n in zip(ids, counts)]
    return dict(labels=labels, clusters=clusters, points=points, texts=texts, vectors=vectors, row_ids=row_ids,
                soft_labels=np.where(labels < 0, 2, labels).astype(np.int32)), group


def _apply(base, edits):
    return apply_edits(base["labels"], base["clusters"], edits, points=base["points"], texts=base["texts"],
                       vectors=base["vectors"], row_ids=base["row_ids"], soft_labels=base["soft_labels"])


def _names(cur):
    return {c.id: c.name for c in cur.clusters}


def test_rename_changes_only_the_name():
    base, _ = _planted()
    cur = _apply(base, [{"op": "rename", "cluster": 1, "name": "  python   help "}])
    assert np.array_equal(cur.labels, base["labels"])
    assert _names(cur) == {0: "refunds-ish", 1: "python help", 2: "hobbies", -1: "unclustered"}
    assert [c.id for c in cur.clusters] == [0, 1, 2, -1]  # noise last, as the label stage orders them


def test_merge_takes_the_smallest_id_and_sums_sizes():
    base, _ = _planted()
    cur = _apply(base, [{"op": "merge", "clusters": [2, 0]}])
    assert set(np.unique(cur.labels)) == {-1, 0, 1}
    assert np.array_equal(cur.labels == 0, np.isin(base["labels"], [0, 2]))
    sizes = {c.id: c.size for c in cur.clusters}
    assert sizes[0] == int(np.isin(base["labels"], [0, 2]).sum()) and 2 not in sizes
    # a merged cluster is named again from its c-TF-IDF keywords; the other keeps its name
    assert _names(cur)[1] == "code-ish" and _names(cur)[0] != "refunds-ish"
    assert cur.soft_labels[5] == 0  # an unclustered row that leaned to cluster 2 now leans to 0


def test_split_recovers_two_planted_groups():
    from sklearn.metrics import adjusted_rand_score

    base, group = _planted()
    cur = _apply(base, [{"op": "split", "cluster": 2, "k": 2}])
    inside = base["labels"] == 2
    assert set(np.unique(cur.labels[inside])) == {2, 3}  # the biggest part keeps 2, the other gets a new id
    assert adjusted_rand_score(group[inside], cur.labels[inside]) == 1.0
    assert np.array_equal(cur.labels[~inside], base["labels"][~inside])
    names = _names(cur)
    kw = {c.id: c.keywords for c in cur.clusters}
    # each part is named from its own texts
    assert {"garden", "tomato", "soil", "seed"} & set(kw[2] + kw[3])
    assert {"guitar", "chord", "melody", "song"} & set(kw[2] + kw[3])
    assert names[2] != names[3] and names[0] == "refunds-ish"
    assert cur.soft_labels[65] in (2, 3)  # follows KMeans.predict


def test_edits_are_sequential_deterministic_and_ids_are_not_reused():
    base, _ = _planted()
    edits = [{"op": "merge", "clusters": [0, 1]}, {"op": "split", "cluster": 2, "k": 2, "seed": 3},
             {"op": "rename", "cluster": 3, "name": "music"}]
    a, b = _apply(base, edits), _apply(base, edits)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.soft_labels, b.soft_labels)
    assert [c.to_dict() for c in a.clusters] == [c.to_dict() for c in b.clusters]
    assert set(np.unique(a.labels)) == {-1, 0, 2, 3}  # 1 was merged away and is not handed out again
    assert _names(a)[3] == "music"
    # renaming a cluster, then merging it: the merged cluster is a new one, named by its keywords
    c = _apply(base, [{"op": "rename", "cluster": 1, "name": "x"}, {"op": "merge", "clusters": [0, 1]}])
    assert "x" not in _names(c).values()


@pytest.mark.parametrize("edits,needles", [
    ([{"op": "rename", "cluster": 9, "name": "a"}], ["edit 1 (rename)", "cluster 9 does not exist"]),
    ([{"op": "rename", "cluster": 0, "name": "a"}, {"op": "merge", "clusters": [1, 1]}],
     ["edit 2 (merge)", "two or more"]),
    ([{"op": "split", "cluster": -1}], ["edit 1 (split)", "unclustered"]),
    ([{"op": "merge", "clusters": [0, 1]}, {"op": "split", "cluster": 1}], ["edit 2 (split)", "cluster 1 does not"]),
    ([{"op": "rename", "cluster": 0, "name": "code-ish"}], ["edit 1 (rename)", "already cluster 1"]),
    ([{"op": "split", "cluster": 0, "k": 1}], ["edit 1 (split)", "k must be at least 2"]),
    ([{"op": "split", "cluster": 0, "k": 100}], ["edit 1 (split)", "fewer than k=100"]),
    ([{"op": "explode", "cluster": 0}], ["edit 1:", "op must be one of"]),
    ([{"op": "rename", "cluster": 0, "name": ""}], ["edit 1 (rename)", "name"]),
    ([{"op": "rename", "cluster": "0", "name": "a"}], ["edit 1 (rename)", "whole number"]),
    ([{"op": "merge", "clusters": [0, 1], "into": 3}], ["edit 1 (merge)", "unknown field(s) into"]),
    ({"op": "rename"}, ["JSON list"]),
])
def test_bad_edits_are_one_line_naming_the_edit(edits, needles):
    base, _ = _planted()
    with pytest.raises(SieveError) as exc:
        _apply(base, edits)
    msg = str(exc.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_read_edits_names_the_file(tmp_path):
    p = tmp_path / "e.json"
    p.write_text("[{\"op\": \"split\", \"cluster\": 2}")
    with pytest.raises(SieveError, match="e.json is not valid JSON"):
        read_edits(p)
    p.write_text('{"edits": [{"op": "split", "cluster": 2}]}')
    assert read_edits(p) == [{"op": "split", "cluster": 2, "k": 2, "seed": 0}]
    with pytest.raises(SieveError, match="does not exist"):
        read_edits(tmp_path / "nope.json")
    assert normalise_edits([{"op": "merge", "clusters": [4, 1]}]) == [{"op": "merge", "clusters": [1, 4]}]


# -- the workspace, the selection, the manifest and reproduce -------------------------------------


def test_curated_map_in_the_workspace_selection_manifest_and_reproduce(tmp_path):
    from core.manifest import build_manifest, write_manifest
    from core.engines.local import build_map, current_map, curate_map, load_map, reproduce, run_selection
    from core.selection import SelectParams
    from tests.fakes import BagOfWordsEncoder
    from tests.app_fixtures import build_small_map

    ws, data = build_small_map(tmp_path / "ws", n_rows=300, seed=3)
    keys, params = current_map(ws)
    ids = sorted(c.id for c in data.clusters if c.id >= 0)
    assert len(ids) >= 2
    big = max((c for c in data.clusters if c.id >= 0), key=lambda c: c.size).id
    other = next(c for c in ids if c != big)
    nxt = max(ids) + 1
    edits = [{"op": "rename", "cluster": other, "name": "first [b]*x*"}, {"op": "split", "cluster": big, "k": 3},
             {"op": "merge", "clusters": [big, nxt]}]
    new = curate_map(ws, keys, edits, params)
    assert new.edits and new.map_id == new.edits and new.label == keys.label
    cur = load_map(ws)  # the workspace's current map is the curated one
    assert cur.keys.edits == new.edits and cur.edits == normalise_edits(edits)
    assert cur.cluster_names[other] == "first [b]*x*"
    assert set(cur.cluster_names) == set(ids) | {-1, nxt + 1}  # nxt was merged back into big
    assert (cur.labels == big).sum() < (data.labels == big).sum()
    assert np.array_equal(cur.base_labels, data.labels)
    assert sum(c.size for c in cur.clusters) == len(cur.row_ids)
    # a rebuild with the same settings keeps the workspace's edits; the same edits hit the cache
    again = build_map(ws, params, encoder=BagOfWordsEncoder())
    assert again.edits == new.edits
    # the selection sees the curated clusters; the manifest carries the edits and the new names
    sp = SelectParams(budget=60, policy="equal")
    sel = run_selection(ws, cur, sp)
    assert set(sel.allocation) == set(cur.cluster_names)
    man = build_manifest(cur, params, sp, sel)
    assert man["curate"]["edits"] == cur.edits and man["curate"]["key"] == new.edits
    assert {c["id"]: c["name"] for c in man["clusters"]}[other] == "first [b]*x*"
    mpath = write_manifest(tmp_path / "m.json", man, cur)
    # reproduce in a fresh workspace replays the edits: identical ids, clusters and names
    ws2_data, sel2, _, _ = reproduce(type(ws)(tmp_path / "ws2"), man, encoder=BagOfWordsEncoder(), manifest_path=mpath)
    assert sorted(sel2.row_ids.tolist()) == man["selected_row_ids"]
    assert np.array_equal(ws2_data.labels, cur.labels) and ws2_data.cluster_names == cur.cluster_names
    # clearing the edits goes back to HDBSCAN's clusters
    back = curate_map(ws, new, [], params)
    assert back.edits is None and np.array_equal(load_map(ws).labels, data.labels)


def test_edits_on_a_parallel_map_replay_from_the_map_file(tmp_path, monkeypatch):
    """A parallel-UMAP map is imported from the map file next to the manifest: the file
    holds HDBSCAN's labels (the edits replay on top of them), so the curated clusters match."""
    import core.stages.project as P
    from core.manifest import build_manifest, read_manifest, write_manifest
    from core.engines.local import current_map, curate_map, load_map, reproduce, run_selection
    from core.selection import SelectParams
    from core.store.workspace import Workspace
    from tests.fakes import BagOfWordsEncoder
    from tests.app_fixtures import build_small_map

    monkeypatch.setattr(P, "PARALLEL_MIN_ROWS", 0)
    ws, data = build_small_map(tmp_path / "ws", n_rows=300, seed=3)
    keys, params = current_map(ws)
    assert not params.project.exact
    big = max((c for c in data.clusters if c.id >= 0), key=lambda c: c.size).id
    curate_map(ws, keys, [{"op": "split", "cluster": big, "k": 2}], params)
    cur = load_map(ws)
    sp = SelectParams(budget=50, policy="equal", pick="diverse")
    man = build_manifest(cur, params, sp, run_selection(ws, cur, sp))
    assert man["map"]["required"]
    mpath = write_manifest(tmp_path / "out" / "m.json", man, cur)
    man = read_manifest(mpath)
    assert man["map"]["file"] and man["curate"]["edits"] == cur.edits
    again, sel2, _, _ = reproduce(Workspace(tmp_path / "ws2"), man, encoder=BagOfWordsEncoder(), manifest_path=mpath)
    assert np.array_equal(again.base_labels, data.labels) and np.array_equal(again.labels, cur.labels)
    assert sorted(sel2.row_ids.tolist()) == man["selected_row_ids"]


def test_a_manifest_with_a_bad_edit_is_refused_naming_it(tmp_path):
    import json

    from core.manifest_schema import validate_manifest

    base = {"manifest_version": 1, "dataset": {"sources": ["x.csv"], "fingerprint": "f", "key": "k", "n_rows": 1,
                                               "text": {"column": "text", "template": None}},
            "model": {}, "project": {}, "cluster": {}, "select": {}, "selected_row_ids": []}
    good = {**base, "curate": {"version": 1, "edits": [{"op": "merge", "clusters": [0, 1]}], "key": "abc"}}
    try:
        validate_manifest(json.loads(json.dumps(good)), "m.json", 1)
    except SieveError as exc:  # other sections of this stub may be refused, never the curate one
        assert "curate" not in str(exc), exc
    bad = {**base, "curate": {"version": 1, "edits": [{"op": "merge", "clusters": [0]}]}}
    with pytest.raises(SieveError, match=r"manifest m.json: curate.edit 1 \(merge\)"):
        validate_manifest(bad, "m.json", 1)

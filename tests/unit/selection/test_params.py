"""core.selection.params: SelectParams' validation (every field named in its error), its
JSON round trip and old manifests' dicts.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.selection import SelectParams
from core.store.workspace import SieveError


def test_select_params_roundtrip_through_json():
    import json

    p = SelectParams(budget=50, policy="sqrt", pick="score", seed=3, noise=4, min_per_cluster=1,
                     max_per_cluster=9, overrides={2: 7}, bounds={1: (2, None), 3: (None, 5)},
                     score_column="quality", score_ascending=True, pins=(5, 1), bans=(9,))
    back = SelectParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert back.pins == (1, 5)


SELECT_BAD = {
    "budget": [0, -1, 2.5, True, "10"],
    "algo_version": [0, 4, "2", True, 1.5],
    "policy": ["uniform", "", None],
    "pick": ["best", None],
    "seed": [-1, 1.5, True, "0"],
    "noise": ["sometimes", -1, True, 2.5],
    "min_per_cluster": [-1, 1.5],
    "max_per_cluster": [-1, 2.5],
    "overrides": [{0: -1}, {"x": 3}, {0: 2.5}],
    "bounds": [{0: (5, 2)}, {0: (-1, None)}, {"x": (1, 2)}, {0: (1.5, None)}, {0: 5}],
    "score_column": [None, ""],  # with pick="score"
    "score_ascending": ["yes"],
    "pins": [("a",)],
    "bans": [("a",)],
    "dedup": ["fuzzy", None],
    "near_dup_threshold": [0, 1.5, -0.1, True, "0.9", float("nan")],
    "mmr_lambda": [-0.1, 1.1, None],
    "soft_noise_threshold": [-0.5, 2, "x"],
    "budget_unit": ["bytes", None],
    "tokenizer": ["gpt", None],
    "strata_column": ["", 3],
    "strata_bounds": [{"a": (3, 1)}, {"a": (-1, None)}, {"a": 5}, [1]],  # also: bounds without a column
    "reference_path": ["", 5],
    "reference_text": ["", None],
    "coverage_distance": [-0.1, 3, None],
    "leakage": ["maybe", "drop"],  # 'drop' without a reference_path
    "leakage_threshold": [0, 1.2, None],
    "target_path": ["", 5],
    "target_text": ["", None],
    "cluster_choice": ["biggest", "", None],
}


def test_select_bad_cases_cover_every_field():
    assert set(SELECT_BAD) == {f.name for f in dataclasses.fields(SelectParams)}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in SELECT_BAD.items() for v in vs])
def test_select_params_bad_value_names_the_field(field, value):
    kwargs = {"budget": 10, field: value}
    if field == "score_column":
        kwargs["pick"] = "score"
    with pytest.raises(ValueError) as exc:
        SelectParams(**kwargs)
    assert field in str(exc.value)


@pytest.mark.parametrize("kwargs,names", [
    (dict(min_per_cluster=5, max_per_cluster=2), ("min_per_cluster", "max_per_cluster")),
    (dict(pins=(1, 2), bans=(2,)), ("pins", "bans")),
])
def test_conflicting_params_name_both(kwargs, names):
    with pytest.raises(ValueError) as exc:
        SelectParams(budget=10, **kwargs)
    assert all(n in str(exc.value) for n in names)


@pytest.mark.parametrize("bad", [0, 4, "2", True, 1.5, None])
def test_algo_version_is_validated(bad):
    with pytest.raises(SieveError, match="algo_version"):
        SelectParams(budget=5, algo_version=bad)


def test_select_params_round_trip_and_old_dicts():
    p = SelectParams(budget=10, pick="facility-global", target_path="/x/t.csv", target_text="q")
    d = json.loads(json.dumps(p.to_dict()))
    assert d["target_path"] == "/x/t.csv" and SelectParams.from_dict(d) == p
    plain = SelectParams(budget=10).to_dict()
    assert "target_path" not in plain  # manifests without a target keep their shape
    assert SelectParams.from_dict(plain).target_path is None

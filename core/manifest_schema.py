"""The manifest's schema: its top-level keys (in the order they are written) and the
strict validation of a manifest read from disk (``sieve reproduce``, ``sieve verify``).

A manifest is data from outside: every key and type is checked, and every parameter
section is built into its params dataclass (whose own checks name the parameter), so a
malformed manifest is one :class:`SieveError` line naming the key, never a traceback
from deep inside a stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.curate import normalise_edits
from core.selection import SelectParams
from core.stages.cluster import ClusterParams
from core.stages.dataset import TextSpec
from core.stages.embed import EmbedParams
from core.stages.naming import LabelParams
from core.stages.project import ProjectParams
from core.store.workspace import SieveError

TOP_ORDER = ("manifest_version", "schema_version", "engine", "created", "dataset", "model", "project", "cluster",
             "label", "curate", "map", "scale", "select", "budget_unit", "selection", "clusters", "notes", "metrics",
             "versions", "export", "n_selected", "selected_ids_sha256", "selected_row_ids")
LOCAL_KEYS = tuple(k for k in TOP_ORDER if k not in ("engine", "scale"))
RAY_KEYS = tuple(k for k in TOP_ORDER if k not in ("label", "curate", "map", "selection", "metrics"))

TOP_KEYS = frozenset(TOP_ORDER)
REQUIRED = ("dataset", "model", "project", "cluster", "select", "selected_row_ids", "manifest_version")
DATASET_KEYS = frozenset({"sources", "fingerprint", "key", "n_rows", "n_empty", "n_duplicates", "text",
                          "vector_column", "delimiter", "encoding"})
SECTIONS = {"model": dict, "project": dict, "cluster": dict, "label": dict, "map": dict, "scale": dict,
            "select": dict, "selection": dict, "metrics": dict, "versions": dict, "export": dict, "clusters": list,
            "notes": list, "created": str, "budget_unit": str, "selected_ids_sha256": str, "engine": str,
            "curate": dict}


def _check_curate(section: Any, p: str) -> None:
    """The cluster edits (core.curate) a manifest replays: each one is checked, naming it."""
    if not section:
        return
    try:
        normalise_edits(section.get("edits") or [])
    except SieveError as exc:
        raise SieveError(f"manifest {p}: curate.{exc}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_name(v: Any) -> str:
    return type(v).__name__ if v is not None else "null"


def validate_manifest(m: Any, path: Path | str, newest: int) -> dict:
    """``m`` if it is a well-formed Sieve manifest of version <= ``newest``; else
    :class:`SieveError` naming the file and the offending key."""
    p = str(path)
    if not isinstance(m, dict):
        raise SieveError(f"manifest {p} is not a JSON object; is it a Sieve manifest?")
    for key in REQUIRED:
        if key not in m:
            raise SieveError(f"manifest {p} lacks the {key!r} section; is it a Sieve manifest?")
    extra = sorted(set(m) - TOP_KEYS)
    if extra:
        raise SieveError(f"manifest {p} has unknown key {extra[0]!r}; it was edited or written by another tool")
    v = m["manifest_version"]
    if not _is_int(v) or v < 1:
        raise SieveError(f"manifest {p}: manifest_version must be a whole number, got {v!r}")
    if v > newest:
        raise SieveError(f"manifest {p} has version {v}, newer than this Sieve understands ({newest})")
    if "schema_version" in m and m["schema_version"] is not None and not _is_int(m["schema_version"]):
        raise SieveError(f"manifest {p}: schema_version must be a whole number, got {m['schema_version']!r}")
    for key, kind in SECTIONS.items():
        if key in m and m[key] is not None and not isinstance(m[key], kind):
            raise SieveError(f"manifest {p}: {key!r} must be a JSON {'object' if kind is dict else kind.__name__}, "
                             f"got {_type_name(m[key])}")
    _check_dataset(m["dataset"], p)
    _check_curate(m.get("curate"), p)
    ids = m["selected_row_ids"]
    if not isinstance(ids, list) or not all(_is_int(i) and 0 <= i < 2**63 for i in ids):
        raise SieveError(f"manifest {p}: selected_row_ids must be a list of non-negative whole numbers")
    if "n_selected" in m and (not _is_int(m["n_selected"]) or m["n_selected"] != len(ids)):
        raise SieveError(f"manifest {p}: n_selected {m['n_selected']!r} does not match the "
                         f"{len(ids)} selected_row_ids")
    _check_params(m, p)
    return m


def _check_dataset(ds: Any, p: str) -> None:
    if not isinstance(ds, dict):
        raise SieveError(f"manifest {p}: 'dataset' must be a JSON object, got {_type_name(ds)}")
    extra = sorted(set(ds) - DATASET_KEYS)
    if extra:
        raise SieveError(f"manifest {p}: unknown key 'dataset.{extra[0]}'")
    src = ds.get("sources")
    if not isinstance(src, list) or not src or not all(isinstance(s, str) and s and "\x00" not in s for s in src):
        raise SieveError(f"manifest {p}: dataset.sources must be a non-empty list of file paths, got {src!r:.80}")
    if not isinstance(ds.get("fingerprint"), str):
        raise SieveError(f"manifest {p}: dataset.fingerprint must be a string")
    text = ds.get("text")
    if not isinstance(text, dict) or set(text) - {"column", "template"}:
        raise SieveError(f"manifest {p}: dataset.text must be an object with 'column' or 'template'")
    if not all(x is None or isinstance(x, str) for x in text.values()):
        raise SieveError(f"manifest {p}: dataset.text.column/template must be strings")
    for key in ("vector_column", "delimiter", "encoding"):
        if ds.get(key) is not None and not isinstance(ds[key], str):
            raise SieveError(f"manifest {p}: dataset.{key} must be a string or null")
    try:
        TextSpec(**text)
    except SieveError as exc:
        raise SieveError(f"manifest {p}: dataset.{exc}") from None


def _params(m: dict, section: str) -> dict:
    sec = m.get(section) or {}
    params = sec.get("params", {}) if isinstance(sec, dict) else {}
    if not isinstance(params, dict):
        raise SieveError(f"{section}.params must be a JSON object")
    return params


def _check_params(m: dict, p: str) -> None:
    """Build every params dataclass from its section; their checks name the parameter."""
    builds = [("model.params", lambda: EmbedParams.from_dict(_params(m, "model"))),
              ("project.params", lambda: ProjectParams.from_dict(_params(m, "project"))),
              ("cluster.params", lambda: ClusterParams.from_dict(_params(m, "cluster"))),
              ("select", lambda: SelectParams.from_dict(m["select"]))]
    if m.get("label") is not None:
        builds.append(("label.params", lambda: LabelParams(**_params(m, "label"))))
    for where, build in builds:
        try:
            build()
        except SieveError as exc:
            raise SieveError(f"manifest {p}: {where}: {' '.join(str(exc).split())}") from None
        except TypeError as exc:  # an unknown or missing field
            raise SieveError(f"manifest {p}: {where}: {' '.join(str(exc).split())}") from None
        except (ValueError, KeyError, AttributeError, OverflowError) as exc:
            raise SieveError(f"manifest {p}: {where} is malformed ({type(exc).__name__}: {exc})") from None

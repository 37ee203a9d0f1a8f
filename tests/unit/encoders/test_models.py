"""core.encoders.models: model folders are confined to $SIEVE_DATA_DIR in server mode (issue 15 item 5),
and the default model resolves to the local package."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.encoders.models import DEFAULT_MODEL_ID, confine_model, default_model_path, model_id, resolve_model
from core.store.workspace import SieveError


def test_model_folders_are_confined_in_server_mode(tree):
    data, _ = tree
    (data / "models" / "mini").mkdir(parents=True)
    assert confine_model("all-MiniLM-L6-v2", data) == "all-MiniLM-L6-v2"
    assert confine_model("models/mini", data) == str(data.resolve() / "models" / "mini")
    assert confine_model("/anything/at/all", None) == "/anything/at/all"  # local mode: as typed
    for bad in ("/etc", "~/models", "../outside", "out", "sentence-transformers/all-mpnet-base-v2", "models/*"):
        with pytest.raises(SieveError):
            confine_model(bad, data)


def test_default_model_resolves_to_the_local_package():
    path = Path(resolve_model("all-MiniLM-L6-v2"))
    assert path == default_model_path() and path.is_dir()
    assert (path / "config.json").is_file() or (path / "modules.json").is_file()
    for alias in ("all-MiniLM-L6-v2", "default", DEFAULT_MODEL_ID):
        assert model_id(alias) == DEFAULT_MODEL_ID

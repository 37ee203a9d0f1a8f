"""Shared fixtures.  Names are prefixed ``sieve_`` so other suites can add their own; the
few fixtures that moved here from test files of several folders (``tree``, ``real_map``)
keep the names those tests already use.

Expensive things (the real model, a real-model map, a fake-encoder map) are built once
per session under ``tmp_path_factory``; tests must treat them as read-only (write new
files elsewhere, never change the session workspaces' state).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading

# Never touch the network: the default model is the packaged local folder.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Exported ONNX models, the distilled preview model and numba's cache go to a folder of
# this test session (subprocesses inherit it), never to the user's ~/.cache/sieve.
os.environ.setdefault("SIEVE_CACHE_DIR", tempfile.mkdtemp(prefix="sieve-test-cache-"))
# The app's background warm-up would export the ONNX model into that fresh cache dir in
# every test session; tests that need the model load it themselves.
os.environ.setdefault("SIEVE_NO_PREPARE_MODEL", "1")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from tests.builders import secret_tree  # noqa: E402
from tests.fakes import SAMPLE_CSV, TopicEncoder, build_topic_map, start_sieve, write_table  # noqa: E402

# Property tests draw the same examples on every run, so a CI result can be reproduced
# (a failure that only a random draw finds would otherwise come and go).  Set
# SIEVE_HYPOTHESIS=explore to draw fresh examples while developing.
settings.register_profile("sieve", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile("explore" if os.environ.get("SIEVE_HYPOTHESIS") == "explore" else "sieve")

# The generated data the real-model map is built from (see unit/engines/test_local.py
# for the calibration of the cluster-recovery threshold on exactly this set).
REAL_MAP_ROWS = 600
REAL_MAP_SEED = 3
FAKE_MAP_ROWS = 400
FAKE_MAP_SEED = 11


@dataclass
class SieveMapFixture:
    """A workspace with an ingested dataset and a built map (read-only for tests)."""

    ws: object  # core.store.workspace.Workspace
    path: Path  # the ingested file
    table: pa.Table  # the generated table, in file order (row id i == table row i)
    keys: object  # core.engines.local.MapKeys
    data: object  # core.engines.local.MapData
    params: object  # core.engines.local.MapParams
    encoder: object

    def topics(self) -> np.ndarray:
        """The true topic of each mapped row, aligned with ``data.row_ids``."""
        return np.asarray(self.table.column("topic").to_pylist(), dtype=object)[np.asarray(self.data.row_ids)]


def _build_map(root: Path, table: pa.Table, encoder, params=None) -> SieveMapFixture:
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.engines.local import MapParams, build_map, load_map
    from core.store.workspace import Workspace

    params = params or MapParams()
    path = write_table(table, root / "data.parquet")
    ws = Workspace(root / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    keys = build_map(ws, params, encoder=encoder)
    return SieveMapFixture(ws, path, table, keys, load_map(ws), params, encoder)


@pytest.fixture(scope="session")
def sieve_real_encoder():
    """The real packaged default model (all-MiniLM-L6-v2), loaded once, on the CPU."""
    from core.stages.embed import EmbedParams
    from core.encoders.registry import load_encoder

    return load_encoder(EmbedParams().model, device="cpu")


@pytest.fixture(scope="session")
def sieve_real_map(tmp_path_factory, sieve_real_encoder) -> SieveMapFixture:
    """600 clean generated rows (16 known topics) mapped with the real model and default params."""
    from sample_data.generate import generate_rows

    table = generate_rows(REAL_MAP_ROWS, seed=REAL_MAP_SEED, mess=False)
    return _build_map(tmp_path_factory.mktemp("sieve_real_map"), table, sieve_real_encoder)


@pytest.fixture(scope="session")
def sieve_fake_map(tmp_path_factory) -> SieveMapFixture:
    """400 clean generated rows mapped with a seeded :class:`TopicEncoder` (topic -> direction)."""
    from sample_data.generate import generate_rows

    table = generate_rows(FAKE_MAP_ROWS, seed=FAKE_MAP_SEED, mess=False)
    enc = TopicEncoder(dict(zip(table.column("text").to_pylist(), table.column("topic").to_pylist())))
    return _build_map(tmp_path_factory.mktemp("sieve_fake_map"), table, enc)


@pytest.fixture(scope="session")
def real_map(tmp_path_factory):
    """(workspace, MapData, topics by row id) of 200 generated rows embedded with all-MiniLM-L6-v2
    (:func:`tests.fakes.build_topic_map`), for the search tests of unit/explore, integration and
    app; built once per session (the tests only read it: searching writes nothing)."""
    from core.engines.local import load_map

    ws, table = build_topic_map(tmp_path_factory.mktemp("search"))
    data = load_map(ws)
    topics = dict(zip(range(table.num_rows), table.column("topic").to_pylist()))  # row ids follow file order
    return ws, data, topics


@pytest.fixture
def tree(tmp_path):
    """data/ (the allowed folder, with a link out of it) beside outside/ (a secret CSV):
    :func:`tests.builders.secret_tree` under ``tmp_path``; returns (data, outside)."""
    return secret_tree(tmp_path)


@pytest.fixture
def sieve_ws(tmp_path):
    """A fresh, empty workspace."""
    from core.store.workspace import Workspace

    return Workspace(tmp_path / "ws")


@pytest.fixture
def sieve_small_table() -> pa.Table:
    """A small hand-made table: 6 rows, a text column and a few other typed columns."""
    return pa.table({
        "id": ["r0", "r1", "r2", "r3", "r4", "r5"],
        "instruction": ["Bake sourdough bread", "Sort a list in Python", "Plan a trip to Rome",
                        "Fix a flat bike tyre", "Write a SQL join", "Prune tomato plants"],
        "input": ["with rye flour", None, "for 3 days", "", "on two tables", None],
        "text": ["bread baking", "python sorting", "rome travel", "bike repair", "sql joins", "garden tomatoes"],
        "quality": [0.9, 0.1, 0.5, 0.7, 0.3, 0.6],
        "n": [1, 2, 3, 4, 5, 6],
    })


# -- the end-to-end CLI run, started in the background ------------------------------------
#
# `sieve run` on the 3000-row committed sample and `sieve reproduce` in a fresh workspace
# each embed every text with the real model (~1 min of CPU each on a small machine).  They
# are started in a background thread as soon as collection shows that a test needs them,
# so they overlap with the in-process tests instead of adding to the suite's wall time.

SIEVE_CLI_E2E_BUDGET = 150


class SieveCliE2E:
    """``sieve run SAMPLE --budget 150 --policy equal --pick diverse`` then ``sieve reproduce``."""

    budget = SIEVE_CLI_E2E_BUDGET

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="sieve-cli-e2e-"))
        self.out = self.root / "subset.parquet"
        self.manifest = Path(str(self.out) + ".manifest.json")
        self.again = self.root / "again.jsonl"
        self.ws1, self.ws2 = self.root / "ws1", self.root / "ws2"
        self.run: subprocess.CompletedProcess | None = None
        self.reproduce: subprocess.CompletedProcess | None = None
        self.error: BaseException | None = None
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="sieve-cli-e2e", daemon=True)
        self._thread.start()

    def _step(self, *args) -> subprocess.CompletedProcess | None:
        with self._lock:
            if self._stopped:
                return None
            proc = start_sieve(*args)
            self._procs.append(proc)
        out, err = proc.communicate(timeout=1200)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def _work(self):
        try:
            self.run = self._step("run", SAMPLE_CSV, "--text", "text", "--budget", self.budget, "--policy", "equal",
                                  "--pick", "diverse", "--out", self.out, "-w", self.ws1)
            if self.run is not None and self.run.returncode == 0:
                self.reproduce = self._step("reproduce", self.manifest, "--out", self.again, "-w", self.ws2)
        except BaseException as exc:  # reported by wait()
            self.error = exc

    def wait(self) -> "SieveCliE2E":
        self._thread.join(timeout=1500)
        if self.error is not None:
            raise self.error
        if self._thread.is_alive():
            raise TimeoutError("the background sieve run/reproduce did not finish in 25 minutes")
        return self

    def stop(self):
        with self._lock:
            self._stopped = True
            for p in self._procs:
                if p.poll() is None:
                    p.kill()
        self._thread.join(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


_SIEVE_CLI_E2E: SieveCliE2E | None = None


def _sieve_cli_e2e() -> SieveCliE2E:
    global _SIEVE_CLI_E2E
    if _SIEVE_CLI_E2E is None:
        _SIEVE_CLI_E2E = SieveCliE2E()
    return _SIEVE_CLI_E2E


@pytest.hookimpl(trylast=True)  # after -k / -m deselection
def pytest_collection_modifyitems(config, items):
    """Start the background CLI run if a selected test needs it, and move those tests last
    so that everything else runs while it works."""
    needs = [item for item in items if "sieve_cli_e2e" in getattr(item, "fixturenames", ())]
    if not needs or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in needs] + needs
    _sieve_cli_e2e()


def pytest_sessionfinish(session, exitstatus):
    if _SIEVE_CLI_E2E is not None:
        _SIEVE_CLI_E2E.stop()


@pytest.fixture(scope="session")
def sieve_cli_e2e() -> SieveCliE2E:
    """The finished background run (see :class:`SieveCliE2E`); ``.run`` / ``.reproduce`` hold the processes."""
    return _sieve_cli_e2e().wait()

"""Small data builders and helpers shared by test files in several folders.

Plain numpy/pathlib code (no ``core`` import), each defined once here and imported by the
tests that use it (the test modules import them under the short names they have always used,
e.g. ``from tests.builders import labelled_blobs as _blobs``).  Fakes (encoders, data
writers, the CLI runners) live in ``tests/fakes.py``; fixtures in the ``conftest.py`` files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.fakes import blobs_on_sphere

# -- blobs of known clusters ---------------------------------------------------------------


def labelled_blobs(seed: int, sizes, dim: int, spread: float = 0.6, noise: int = 0):
    """(labels int (n,), vectors float32 (n, dim)): Gaussian blobs of the given ``sizes`` around
    standard-normal centres (``spread`` = per-axis std), plus ``noise`` rows labelled -1 spread
    twice as wide; rows are shuffled so clusters interleave in row order, like a real map."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), dim))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    if noise:
        labels = np.concatenate([labels, np.full(noise, -1)])
    v = centres[np.maximum(labels, 0)] + rng.standard_normal((len(labels), dim)) * spread
    v[labels < 0] = rng.standard_normal((noise, dim)) * 2
    perm = rng.permutation(len(labels))  # clusters interleaved in row order, like a real map
    return labels[perm], v[perm].astype(np.float32)


def unit_rows(v):
    """``v`` with each row divided by its Euclidean norm (same dtype; no guard for zero rows)."""
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def separated_blobs(seed=0, sizes=(120, 120, 120, 60, 12)):
    """Well separated Gaussian blobs (the last one small) in 5-D, plus 32-D unit vectors
    that carry the same structure (for the algorithms that cluster the raw vectors)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), 5)) * 12
    pts = np.concatenate([centres[i] + rng.normal(size=(s, 5)) for i, s in enumerate(sizes)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    dirs = rng.normal(size=(len(sizes), 32))
    vec = dirs[truth] + 0.25 * rng.normal(size=(len(truth), 32))
    vec = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    return pts, vec, truth


def blob_cluster(n=200, dim=12, seed=0):
    """One cluster of ``n`` unit vectors scattered around one direction."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim)
    return blobs_on_sphere([centre], [n], spread=0.6, seed=seed), centre / np.linalg.norm(centre)


# -- texts over the model's token limit ----------------------------------------------------

WORDS = ("we study graph neural networks for protein structure prediction and report strong results on "
         "several benchmark datasets with careful ablations of attention layers and contrastive losses").split()


def long_pair(n_words: int = 330, seed: int = 0) -> tuple[str, str]:
    """Two texts identical in their first ~n_words words (> 256 tokens), different after."""
    rng = np.random.default_rng(seed)
    base = " ".join(rng.choice(WORDS, n_words))
    return (base + " In conclusion the method fails on small molecules and noisy labels.",
            base + " Finally we release code for quantum chemistry simulations of crystals.")


# -- a data folder with a link out of it (path confinement) --------------------------------

SECRET = "TOPSECRETHEADER"


def secret_tree(root: Path) -> tuple[Path, Path]:
    """(data, outside) under ``root``: data/ (the allowed folder, with links ``out`` -> outside/
    and ``void`` -> an empty folder, and ``sub/rows.csv``) beside outside/ (``secret.csv``,
    whose header is :data:`SECRET`)."""
    data, outside, empty = root / "data", root / "outside", root / "empty"
    for d in (data / "sub", outside, empty):
        d.mkdir(parents=True)
    (outside / "secret.csv").write_text(f"{SECRET},b\n1,2\n")
    (data / "sub" / "rows.csv").write_text("text,n\nhello world,1\nsecond row,2\n")
    (data / "out").symlink_to(outside)
    (data / "void").symlink_to(empty)
    return data, outside

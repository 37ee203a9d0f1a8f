"""Colours and name labels of the clusters on the map.

The cluster palette follows Glasbey et al. (2007, "Colour displays for categorical
images"): each next colour is the candidate farthest, in CIE L*a*b* (CIE76 ΔE), from all
colours chosen before it.  Candidates are an sRGB grid minus greys and near-greys
(chroma < 35), minus colours too dark or too light to read on white (L* outside 30..85),
and the noise grey counts as already chosen, so no cluster looks like the unclustered
rows.  Every prefix of the palette is as spread as the method can make it, so the
largest clusters (ids 0, 1, ... after relabelling by size) get the most distinct colours;
a cluster's colour depends only on its id.
"""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Iterable, Mapping

import numpy as np

NOISE_COLOR = "#9e9e9e"
PALETTE_SIZE = 256
MIN_CHROMA = 35.0
LIGHTNESS = (30.0, 85.0)
FIRST_COLOR = "#1f77b4"  # the first cluster keeps Plotly's familiar blue


def hex_to_rgb(colors: Iterable[str]) -> np.ndarray:
    """'#rrggbb' strings -> (n, 3) float64 sRGB in [0, 1].  Raises ValueError on another form."""
    out = []
    for c in colors:
        if not (isinstance(c, str) and len(c) == 7 and c[0] == "#"):
            raise ValueError(f"colour {c!r} is not '#rrggbb'")
        out.append([int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.asarray(out, dtype=np.float64).reshape(-1, 3)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(n, 3) sRGB in [0, 1] -> (n, 3) CIE L*a*b* (D65 white; IEC 61966-2-1 and CIE 15)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


@lru_cache(maxsize=1)
def distinct_colors() -> tuple[str, ...]:
    """:data:`PALETTE_SIZE` '#rrggbb' colours, each the farthest (ΔE) from those before it
    and from :data:`NOISE_COLOR` (see the module docstring).  Deterministic."""
    g = np.linspace(0, 1, 18)
    rgb = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = srgb_to_lab(rgb)
    ok = (np.hypot(lab[:, 1], lab[:, 2]) >= MIN_CHROMA) & (lab[:, 0] >= LIGHTNESS[0]) & (lab[:, 0] <= LIGHTNESS[1])
    rgb, lab = rgb[ok], lab[ok]
    first = int(np.argmin(np.linalg.norm(lab - srgb_to_lab(hex_to_rgb([FIRST_COLOR]))[0], axis=1)))
    grey = srgb_to_lab(hex_to_rgb([NOISE_COLOR]))[0]
    dist = np.minimum(np.linalg.norm(lab - lab[first], axis=1), np.linalg.norm(lab - grey, axis=1))
    chosen = [first]
    while len(chosen) < PALETTE_SIZE:
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(lab - lab[j], axis=1))
    return tuple("#%02x%02x%02x" % tuple(int(round(v * 255)) for v in rgb[j]) for j in chosen)


def cluster_colors(ids: Iterable[int]) -> dict[int, str]:
    """Cluster id -> colour: noise (id < 0) grey, cluster c the palette's c-th colour
    (repeating only past :data:`PALETTE_SIZE` clusters)."""
    pal = distinct_colors()
    return {int(c): NOISE_COLOR if c < 0 else pal[int(c) % len(pal)] for c in ids}


def cluster_centres(xy: np.ndarray, labels: np.ndarray) -> dict[int, tuple[float, float]]:
    """Cluster id -> the median (x, y) of its points; noise (id < 0) has no centre.
    ``xy`` (n, 2) float, ``labels`` (n,) int."""
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    out = {}
    for c in np.unique(labels):
        if c >= 0:
            med = np.median(xy[labels == c], axis=0)
            out[int(c)] = (float(med[0]), float(med[1]))
    return out


def plain_label(name: str, max_len: int = 40) -> str:
    """A cluster name as plain text for a Plotly label: ``&``, ``<`` and ``>`` escaped (Plotly
    reads some HTML tags in text), long names cut with an ellipsis."""
    name = str(name)
    if len(name) > max_len:
        name = name[: max_len - 1].rstrip() + "…"
    return html.escape(name, quote=False)


def name_annotations(centres: Mapping[int, tuple[float, float]], names: Mapping[int, str],
                     max_names: int = 40) -> list[dict]:
    """Plotly layout annotations: each cluster's name at its centre, for the ``max_names``
    lowest ids (the largest clusters), on a translucent white box edged in the cluster's
    colour."""
    colors = cluster_colors(centres)
    out = []
    for c in sorted(centres)[:max_names]:
        x, y = centres[c]
        out.append(dict(x=x, y=y, text=plain_label(names.get(c, f"cluster {c}")), showarrow=False,
                        font=dict(size=10, color="#212121"), bgcolor="rgba(255,255,255,0.6)",
                        bordercolor=colors[c], borderwidth=1, borderpad=2, opacity=0.95,
                        name=f"cluster-name-{c}"))
    return out

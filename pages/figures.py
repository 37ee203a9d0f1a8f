"""Every figure the pages draw: ONE cluster scatter (:func:`cluster_scatter`) for the Map page
(on either engine) and the Budget page, its search highlight and colour-by-column recolouring, the box/lasso shapes
redrawn on it, and the small bar charts (per-cluster shares, linked summaries).

Names from data are HTML-escaped (plotly renders trace names and annotations as HTML).
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go

from core.explore import event_shapes, snippet
from core.palette import cluster_centres, cluster_colors, name_annotations
from core.summaries import MISSING, OTHER

SEARCH_TRACE = "search matches"
LEGEND_TOP = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1)


def _trace(xy: np.ndarray, custom: np.ndarray, texts: list[str], name: str, extra: str, marker: dict) -> go.Scattergl:
    return go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", name=name, customdata=custom, text=texts,
                        hovertemplate="%{text}<extra>" + extra + "</extra>", marker=marker)


def cluster_scatter(xy: np.ndarray, labels: np.ndarray, custom: np.ndarray, texts: Sequence[str], names: dict,
                    *, visible: set[int] | None = None, height: int = 720,
                    uirevision: str = "sieve-map") -> tuple[go.Figure, list[np.ndarray]]:
    """A Scattergl figure of points ``xy`` ((n, 2) float) with one trace per cluster of
    ``labels`` ((n,) int; noise -1 first, grey; colours of core.palette), each cluster's
    name (``names``: id -> name, escaped) at the median of its points, a snippet of
    ``texts[i]`` as hover text and ``custom[i]`` as the point's customdata (what a selection
    event sends back).  Clusters outside ``visible`` are left out.  Returns (figure, the
    indices into the inputs of each trace's points)."""
    ids = sorted({int(c) for c in np.unique(labels)}, key=lambda c: (c >= 0, c))
    colors = cluster_colors(ids)
    snip_len = 100 if len(labels) <= 20_000 else 50
    fig, groups = go.Figure(), []
    for c in ids:
        idx = np.flatnonzero(labels == c)
        if (visible is not None and c not in visible) or len(idx) == 0:
            continue
        hover = [snippet(texts[i], snip_len) for i in idx]
        fig.add_trace(_trace(np.asarray(xy[idx], dtype=np.float32), custom[idx], hover,
                             html.escape(names.get(c, str(c))), "%{fullData.name}",
                             dict(size=4 if c >= 0 else 3, color=colors[c], opacity=0.8 if c >= 0 else 0.45)))
        groups.append(idx)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=30, b=10), dragmode="select", uirevision=uirevision,
        legend=dict(itemclick=False, itemdoubleclick=False, itemsizing="constant", font=dict(size=11)),
        xaxis=dict(showticklabels=False, title=None, zeroline=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False),
        hoverlabel=dict(align="left"),
    )
    centres = cluster_centres(xy, labels)
    if visible is not None:
        centres = {c: p for c, p in centres.items() if c in visible}
    fig.update_layout(annotations=name_annotations(centres, names))
    return fig, groups


def map_figure(data, texts: Sequence[str], drawn: np.ndarray, *, visible: set[int] | None = None,
               highlight: np.ndarray | None = None, height: int = 720) -> tuple[go.Figure, list[np.ndarray]]:
    """The Map page's scatter of the rows at positions ``drawn`` ((k,) int) of ``data`` (a
    MapData; ``texts`` aligned with its rows), rows of ``highlight`` ((n,) bool) ringed red.
    Returns (figure, row positions per trace); ``customdata`` holds each point's row position."""
    drawn = np.asarray(drawn, dtype=np.int64)
    fig, groups = cluster_scatter(data.xy[drawn], data.labels[drawn],
                                  drawn.astype(np.int32), _Aligned(texts, drawn), data.cluster_names,
                                  visible=visible, height=height)
    traces = [drawn[g] for g in groups]
    if highlight is not None and highlight.any():
        pos = drawn[highlight[drawn]]
        if visible is not None:
            pos = pos[np.isin(data.labels[pos], list(visible))]
        if len(pos):
            snip_len = 100 if len(drawn) <= 20_000 else 50
            fig.add_trace(_trace(np.asarray(data.xy[pos], dtype=np.float32), pos.astype(np.int32),
                                 [snippet(texts[i], snip_len) for i in pos], SEARCH_TRACE, "match",
                                 dict(size=8, color="rgba(0,0,0,0)", line=dict(width=1.5, color="#d62728"))))
            traces.append(pos)
    return fig, traces


class _Aligned:
    """``texts[drawn[i]]`` by index, without copying the texts."""

    def __init__(self, texts: Sequence[str], drawn: np.ndarray):
        self.texts, self.drawn = texts, drawn

    def __getitem__(self, i: int) -> str:
        return self.texts[int(self.drawn[i])]


def layout_selections(event) -> list[dict]:
    """A selection event's boxes and lassos as plotly ``layout.selections`` (to redraw them)."""
    boxes, lassos = event_shapes(event)
    out = [dict(type="rect", xref="x", yref="y", x0=x0, x1=x1, y0=y0, y1=y1) for x0, x1, y0, y1 in boxes]
    for xs, ys in lassos:
        path = "M" + "L".join(f"{float(x)},{float(y)}" for x, y in zip(xs, ys)) + "Z"
        out.append(dict(type="path", xref="x", yref="y", path=path))
    return out


def recolor(fig: go.Figure, traces: list[np.ndarray], view) -> None:
    """Colour the map's per-cluster traces by ``view`` (a core.summaries.ColumnView over the
    map's rows; ``traces``: row positions per trace); the traces and their selection stay."""
    kind = view.kind
    palette = [c for c in pc.qualitative.D3 if c.lower() != "#7f7f7f"] + pc.qualitative.Set2
    if kind == "categorical":
        cmap = {i: ("#c7c7c7" if cat in (OTHER, MISSING) else palette[i % len(palette)])
                for i, cat in enumerate(view.categories)}
    finite = view.values[np.isfinite(view.values)] if kind == "numeric" else None
    lo, hi = (float(finite.min()), float(finite.max())) if finite is not None and len(finite) else (0.0, 1.0)
    for t, pos in zip(fig.data, traces):
        if t.name == SEARCH_TRACE:
            continue
        t.showlegend = False
        if kind == "categorical":
            t.marker.color = [cmap[int(c)] for c in view.codes[pos]]
        else:
            vals = view.values[pos]
            t.marker.color = np.where(np.isfinite(vals), vals, lo)
            t.marker.update(colorscale="Viridis", cmin=lo, cmax=hi, showscale=False)
    if kind == "categorical":
        for i, cat in enumerate(view.categories):
            fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=html.escape(cat),
                                       marker=dict(size=8, color=cmap[i]), hoverinfo="skip"))
    else:
        fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                                   marker=dict(colorscale="Viridis", cmin=lo, cmax=hi, color=[lo], showscale=True,
                                               colorbar=dict(title=dict(text=html.escape(view.name)), len=0.5))))
    fig.update_layout(legend_title_text=html.escape(view.name))


def summary_bars(view, rows: list[dict]) -> go.Figure:
    """Horizontal bars of a column's values: share of all rows (grey) and of the selection (blue);
    ``rows`` from core.summaries.bars."""
    labels = [r["label"] for r in rows]
    fig = go.Figure([
        go.Bar(x=[r["all_share"] for r in rows], y=labels, orientation="h", name="all rows",
               marker_color="#bdbdbd", customdata=[r["bar"] for r in rows],
               hovertemplate="%{y}: %{x:.1%} of all rows<extra></extra>"),
        go.Bar(x=[r["selected_share"] for r in rows], y=labels, orientation="h", name="selection",
               marker_color="#1f77b4", customdata=[r["bar"] for r in rows],
               hovertemplate="%{y}: %{x:.1%} of the selection<extra></extra>"),
    ])
    fig.update_layout(barmode="group", height=70 + 22 * len(rows), margin=dict(l=0, r=0, t=24, b=0),
                      title=dict(text=view.name[:40], font=dict(size=12)), showlegend=False, dragmode=False,
                      xaxis=dict(tickformat=".0%", title=None), yaxis=dict(autorange="reversed", type="category"))
    return fig


def share_bars(sizes: dict[int, int], chosen: dict[int, int], names: dict) -> go.Figure:
    """Share of rows per cluster: the full set (``sizes``: cluster -> rows) vs the subset
    (``chosen``: cluster -> rows chosen)."""
    ids = sorted(sizes, key=lambda c: (c < 0, c))
    full_n = max(1, sum(sizes.values()))
    sub_n = max(1, sum(chosen.values()))
    labels = [("noise" if c < 0 else str(c)) for c in ids]
    hover = [html.escape(str(names.get(c, c))) for c in ids]
    fig = go.Figure([
        go.Bar(name="full set", x=labels, y=[sizes[c] / full_n for c in ids], marker_color="#9e9e9e",
               customdata=list(zip([sizes[c] for c in ids], hover)),
               hovertemplate="%{x}: %{customdata[1]}<br>%{customdata[0]} rows (%{y:.1%})<extra>full</extra>"),
        go.Bar(name="subset", x=labels, y=[chosen.get(c, 0) / sub_n for c in ids], marker_color="#1f77b4",
               customdata=list(zip([int(chosen.get(c, 0)) for c in ids], hover)),
               hovertemplate="%{x}: %{customdata[1]}<br>%{customdata[0]} rows (%{y:.1%})<extra>subset</extra>"),
    ])
    fig.update_layout(barmode="group", height=380, xaxis=dict(type="category", title="cluster"),
                      margin=dict(l=10, r=10, t=70, b=10), yaxis_tickformat=".0%",
                      title="Share of rows per cluster: full set vs subset", legend=LEGEND_TOP)
    return fig


def chosen_rows_map(xy: np.ndarray, labels: np.ndarray, background: np.ndarray, chosen: np.ndarray,
                    names: dict) -> go.Figure:
    """All rows at positions ``background`` in grey and the ``chosen`` positions in red, over
    the map ``xy`` ((n, 2) float; ``labels`` (n,) int for the cluster names' places)."""
    m = go.Figure([
        go.Scattergl(x=xy[background, 0], y=xy[background, 1], mode="markers", name="all rows", hoverinfo="skip",
                     marker=dict(size=3, color="#bdbdbd", opacity=0.6)),
        go.Scattergl(x=xy[chosen, 0], y=xy[chosen, 1], mode="markers", name="chosen",
                     hoverinfo="skip", marker=dict(size=5, color="#d62728")),
    ])
    m.update_layout(height=380, margin=dict(l=10, r=10, t=70, b=10), title="Chosen rows on the map",
                    xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False),
                    annotations=name_annotations(cluster_centres(xy[background], labels[background]), names),
                    legend=LEGEND_TOP)
    return m

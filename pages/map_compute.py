"""The Map page's computation: the advanced settings, Compute map / Stop (embed -> project ->
cluster -> label with a line and a progress bar per stage), and the time estimate."""

from __future__ import annotations

import time

import streamlit as st

from core import queries, workflows
from core.stages.embed import Cancelled
from core.workflow_types import Events
from pages import common as C
from pages import forms
from pages import state as S

STAGES = ("embed", "project", "cluster", "label")


def _load_encoder(params, status):
    """The encoder, saying what takes the time: waiting for the background preparation
    of the int8 model, preparing it here (one time), or loading it."""
    e = params.embed
    warm = queries.warmup_state()
    if e.backend == "onnx-int8" and warm["started"] and not warm["model"]:
        status.update(label="Preparing the int8 ONNX model (one time on this machine, about half a minute)…")
        workflows.wait_for_model()
    status.update(label=f"Loading the model {e.model} ({e.backend})…")

    def progress(done, total, msg):  # the one-time export, when it runs here
        status.update(label=f"{msg[:1].upper()}{msg[1:]} ({done}/{total}); later maps skip this…")

    encoder = C.get_encoder(e.model, e.device, e.normalize, e.backend, _progress=progress)
    status.update(label="Model loaded.")
    return encoder


def estimate(ws, info, params) -> str:
    """'about 40 s' for this dataset on this machine, from core.runtime.eta's throughput table."""
    return queries.map_time_estimate(ws, info, params)


class _StageProgress:
    """One line per stage (waiting, running, cached or done) and a progress bar with the time left."""

    def __init__(self):
        self.box = st.container(border=True)
        self.lines = {s: self.box.empty() for s in STAGES}
        self.bars: dict[str, object] = {}
        self.started: dict[str, float] = {}
        self.details: dict[str, str] = {}  # each stage's first progress message, e.g. "2048 cached, 882 to embed"
        self.last = 0.0
        for s in STAGES:
            self.lines[s].text(f"{s}: waiting")

    def on_stage(self, stage, event, meta) -> None:
        if event == "start":
            self.started[stage] = time.perf_counter()
            warm = queries.warmup_state()
            waiting = stage in ("project", "cluster") and warm["started"] and not warm["compiled"]
            self.lines[stage].text(f"{stage}: " + ("compiling UMAP/HDBSCAN once for this server process, then "
                                                   "running…" if waiting else "running…"))
        else:
            state = "cached (skipped)" if meta.get("cached") else f"done in {meta['seconds']:.1f} s"
            self.lines[stage].text(f"{stage}: {state}" + (f" ({self.details[stage]})" if stage in self.details else ""))
            if stage in self.bars:
                self.bars.pop(stage).empty()

    def progress(self, stage, done, total, msg) -> None:
        if stage not in self.details:
            self.details[stage] = msg
            note = "; the longest texts go first, so the first batches are the slowest" if stage == "embed" else ""
            self.lines[stage].text(f"{stage}: running… ({msg}{note})")
        now = time.perf_counter()
        if done < total and now - self.last < 0.25:
            return
        self.last = now
        if stage not in self.bars:
            self.bars[stage] = self.box.progress(0.0)
        elapsed = now - self.started.get(stage, now)
        left = queries.remaining_seconds(done, total, elapsed) if done < total else None
        eta = f", {queries.human_seconds(left)} left" if left is not None else ""
        self.bars[stage].progress(min(1.0, done / max(total, 1)),
                                  text=f"{stage}: {msg} ({done:,}/{total:,}, {elapsed:.0f} s{eta})")

    def on_wait(self, holder: str) -> None:  # another session's computation runs first; this one queues
        self.lines[STAGES[0]].text(f"waiting for another computation to finish ({holder})")


def _compute(ws, info, params) -> None:
    m = S.MapState(S.ss())
    encoder = None
    if not info.vector_column:
        if not queries.embeddings_cached(ws, params.embed):
            with st.status(f"Loading model {C.esc(params.embed.model)}…") as status:
                encoder = _load_encoder(params, status)
    report = _StageProgress()
    m.computing = True
    try:
        keys = workflows.build_map(ws, params, encoder=encoder, events=Events(
            progress=report.progress, on_stage=report.on_stage, on_wait=report.on_wait)).keys
    except Cancelled as exc:
        st.warning(f"{C.esc(exc)}. Press **Compute map** again to resume.")
        return
    finally:
        m.computing = False
    m.run = {"timings": keys.timings, "cached": keys.cached, "details": report.details, "label": keys.map_id}
    C.get_map(m.state, ws, keys.map_id)
    st.rerun()


def compute_section(ws, info, data) -> None:
    """Advanced settings, Compute map / Stop, and what the last run of the map shown did."""
    m = S.MapState(S.ss())
    settings = forms.map_settings_form(S.ss(), data)
    c1, c2, c3 = st.columns([1, 1, 4])
    go_clicked = c1.button("Compute map", type="primary", key=S.W_COMPUTE)
    stop_clicked = c2.button("Stop", key=S.W_STOP, help="Stops after the current batch; finished chunks are kept.")
    if m.computing and not go_clicked:
        m.computing = False
        st.warning(("Stopped. " if stop_clicked else "The map computation was interrupted. ")
                   + "Embeddings finished so far are kept; press **Compute map** to resume where it stopped.")
    run = m.run
    if run and data is not None and run.get("label") == data.keys.map_id:  # describes the map shown, no other
        details = run.get("details", {})
        parts = [f"{s}: " + ("cached" if run["cached"].get(s) else f"{run['timings'].get(s, 0):.1f} s")
                 + (f" ({details[s]})" if s == "embed" and s in details and not run["cached"].get(s) else "")
                 for s in STAGES if s in run["timings"]]
        c3.caption("Last run — " + ", ".join(parts))
    if go_clicked:
        _compute(ws, info, forms.map_params(settings))

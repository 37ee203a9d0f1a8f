"""Data: choose a file (the bundled sample, a path or glob, or an upload), preview
it, choose the text column or a template (and optionally vector/score columns),
and load it into the workspace."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import queries, workflows
from core.explore_files import column_kinds, preview_source, safe_filename, save_upload
from core.stages.dataset import TextSpec
from core.stages.ingest import IngestParams
from core.stages.sources import FORMATS
from core.store.workspace import SieveError
from pages import common as C
from pages import state as S

SOURCES = ("Bundled sample", "Path or glob", "Upload")
UPLOAD_TYPES = ["csv", "tsv", "tab", "json", "jsonl", "ndjson", "parquet", "pq"]
NONE = "(none)"
AUTO = "(from extension)"
DETECT = "(detect)"
DELIMITERS = {DETECT: None, "comma ,": ",", "semicolon ;": ";", "pipe |": "|", "tab": "\t"}
W_DELIMITER, C_DELIMITER = "w.delimiter", "sieve.c.delimiter"
W_ENCODING, C_ENCODING = "w.encoding", "sieve.c.encoding"


def _ingest(ws, source: str, spec, vector_column, file_format, *, quiet: bool = False, delimiter=None,
            encoding=None):

    params = IngestParams(source, spec, vector_column, file_format, delimiter=delimiter, encoding=encoding)
    bar = None if quiet else st.progress(0.0, text="loading")

    def progress(done, total, msg):
        if bar is not None:
            bar.progress(min(1.0, done / max(total, 1)), text=msg)

    try:
        return workflows.ingest(ws, params, progress=progress)
    finally:  # a failed load leaves no half-filled bar behind
        if bar is not None:
            bar.empty()


def _autoload_sample(ws) -> None:
    """First launch: load the bundled sample so a new user can click straight through."""
    d = S.DataState(S.ss())
    if d.autoloaded or C.current_dataset_or_none(ws) is not None or not S.SAMPLE_PATH.is_file():
        return
    d.autoloaded = True
    with st.spinner("Loading the bundled sample…"):
        info, _ = _ingest(ws, str(S.SAMPLE_PATH), TextSpec(column=S.SAMPLE_TEXT_COLUMN), None, None, quiet=True)
    C.pin_dataset(S.ss(), info)
    # Shown here, not flashed: a flash would show on whichever page renders next (e.g. the Map page).
    st.success("Loaded the bundled sample (sample_data/prompts.csv). Go on to the Map page, or choose "
               "another file below.")


def _source(ws) -> str | None:
    # Start from what the workspace holds, so the page describes the loaded dataset.
    info = C.current_dataset_or_none(ws)
    shown_path = _typed_path(info.sources[0]) if info is not None and len(info.sources) == 1 else None
    if shown_path is not None and S.C_SOURCE_KIND not in S.ss():
        S.ss()[S.C_SOURCE_KIND] = SOURCES[1]
        S.ss().setdefault(S.C_SOURCE_PATH, shown_path)
    if info is not None and S.C_TEXT_MODE not in S.ss():
        S.ss()[S.C_TEXT_MODE] = "Column" if info.text.column is not None else "Template"
        if info.text.column is not None:
            S.ss().setdefault(S.C_TEXT_COLUMN, info.text.column)
        else:
            S.ss().setdefault(S.C_TEMPLATE, info.text.template.replace("\n", "\\n"))
        if info.vector_column:
            S.ss().setdefault(S.C_VECTOR_COLUMN, info.vector_column)
    S.init_widget(S.ss(), S.W_SOURCE_KIND, S.C_SOURCE_KIND, SOURCES[0])
    kind = st.radio("Data source", SOURCES, key=S.W_SOURCE_KIND, horizontal=True,
                    on_change=S.persist(S.ss(), S.W_SOURCE_KIND, S.C_SOURCE_KIND))
    if kind == SOURCES[0]:
        st.caption(f"Synthetic instruction prompts: `{S.SAMPLE_PATH.relative_to(S.REPO_ROOT)}`")
        return str(S.SAMPLE_PATH)
    if kind == SOURCES[1]:
        S.init_widget(S.ss(), S.W_SOURCE_PATH, S.C_SOURCE_PATH, "")
        data_root = C.data_root()
        where = f", relative to `{data_root}`" if data_root else ""
        path = st.text_input(f"File path or glob (CSV, TSV, JSON, JSONL, Parquet){where}", key=S.W_SOURCE_PATH,
                             placeholder="prompts/*.parquet" if data_root else "/data/prompts/*.parquet",
                             on_change=S.persist(S.ss(), S.W_SOURCE_PATH, S.C_SOURCE_PATH))
        if not path.strip():
            return None
        return C.confine_read(path)
    # No type=...: Streamlit's own check of the name raises on a NUL byte while restoring the
    # widget, before this script runs, which broke the session's page (issue 15 item 10).
    # The extension is checked here instead, on the sanitised name.
    up = st.file_uploader(f"Upload a file ({', '.join(UPLOAD_TYPES)})", key=S.W_UPLOAD)
    if up is None:
        return None
    ext = safe_filename(up.name).rpartition(".")[2]
    if ext not in UPLOAD_TYPES:
        raise C.SieveError(f"upload {safe_filename(up.name)!r} has an unknown extension; expected one of "
                           + ", ".join(UPLOAD_TYPES))
    saved = S.DataState(S.ss()).uploads
    path = saved.get(up.file_id)
    if path is None or not path.is_file():
        with st.spinner("Saving the upload…"):
            path = save_upload(ws.root, up.name, up.getbuffer(), keep=_keep_uploads(ws))
        saved[up.file_id] = path
    st.caption(f"Saved as {C.esc(path.name)} in the workspace's uploads folder.")
    return str(path)


def _typed_path(source: str) -> str | None:
    """The loaded dataset's path as this session's path box should show it: relative to
    $SIEVE_DATA_DIR in server mode (None when it is not inside it, e.g. an upload), the
    sample never."""
    if source == str(S.SAMPLE_PATH):
        return None
    root = C.data_root()
    if root is None:
        return source
    try:
        return str(Path(source).relative_to(root))
    except ValueError:
        return None


def _keep_uploads(ws) -> set:
    """Uploads never removed by the cap: the loaded dataset's and this session's own."""
    d = S.DataState(S.ss())
    info = C.current_dataset_or_none(ws)
    keep = {str(p) for p in (info.sources if info is not None else [])}
    return keep | {str(p) for p in d.uploads.values()}


def _show_current(ws, info) -> None:
    st.subheader("Loaded dataset")
    if info is None and C.current_dataset_or_none(ws) is not None:
        st.info("The workspace holds another dataset than this session's: choose above.")
        return
    if info is None:
        st.info("No dataset is loaded yet. Choose a source above and press **Load dataset**.")
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Rows", f"{info.n_rows:,}")
    c2.metric("Empty texts", f"{info.n_empty:,}", help="Null, empty, or only spaces and invisible characters "
              "(Unicode separators, control and format characters such as NBSP or zero-width space); kept but never "
              "embedded.")
    c3.metric("Exact duplicates", f"{info.n_duplicates:,}")
    c4.metric("Texts to embed", f"{info.n_embeddable - info.n_duplicates:,}",
              help=f"{info.n_embeddable:,} non-empty rows less {info.n_duplicates:,} exact duplicates: each distinct "
                   "text is embedded once and its duplicates share its vector.")
    st.text(f"source: {', '.join(info.sources[:3])}{' …' if len(info.sources) > 3 else ''}"
            + (f"; delimiter {info.delimiter!r}" if info.delimiter else "")
            + (f"; encoding {info.encoding}" if info.encoding else ""))
    st.text(f"text: {info.text.describe()}" + (f"; vectors: column {info.vector_column!r}" if info.vector_column else ""))
    _long_texts(ws, info)
    st.page_link(S.PAGE_MAP, label="Next: compute the map", icon=":material/scatter_plot:")


def _long_texts(ws, info) -> None:
    """Texts over the model's token limit (the Map page's model), counted with its tokenizer."""
    if info.vector_column:
        return
    model = str((S.ss().get(S.C_MAP_SETTINGS) or {}).get("model") or "all-MiniLM-L6-v2").strip()
    try:
        counts = queries.long_text_count(ws, model)
    except SieveError:
        return
    if counts.max_seq_length is None:
        st.caption(f"The tokenizer of {C.esc(model)} is not available locally, so texts over its token limit "
                   "are not counted.")
        return
    st.metric(f"Texts over the model's {counts.max_seq_length}-token limit", f"{counts.n_over_limit:,}",
              help=f"Counted with the tokenizer of {model}. They are truncated unless the Map page's "
                   "'Texts over the token limit' is set to chunk.")
    msg = counts.message(None, "chunk under the Map page's Advanced settings")
    if msg:
        st.info(msg)


def body() -> None:
    ws = C.get_workspace()
    st.title("Data")
    st.caption(f"Workspace: `{ws.root}`")
    _autoload_sample(ws)
    notice = st.container()  # says so when the workspace moved on to another dataset
    current = st.container()  # filled last, so it shows the result of a Load on this run
    st.subheader("Choose data")
    try:
        _choose(ws)
    except Exception as exc:  # keep the loaded dataset's summary on screen below the error
        C.show_error(exc)
    with notice:
        mine = C.session_dataset(S.ss(), ws)
    with current:
        _show_current(ws, mine)


def _file_format(state: S.State) -> tuple[str | None, str | None, str | None]:
    """The "File format" expander: (file format or None for the extension, delimiter or None
    to detect, encoding or None for UTF-8)."""
    with st.expander("File format", expanded=False):
        formats = [AUTO] + sorted(set(FORMATS.values()))
        fmt = S.persisted(state, st.selectbox, "Read as", S.W_FILE_FORMAT, S.C_FILE_FORMAT, AUTO, formats)
        delim_name = S.persisted(state, st.selectbox, "Delimiter (CSV/TSV)", W_DELIMITER, C_DELIMITER, DETECT,
                                 list(DELIMITERS), help="Detected from the file by default (tab for .tsv).")
        encoding = S.persisted(state, st.text_input, "Encoding (CSV/TSV/JSON)", W_ENCODING, C_ENCODING, "",
                               placeholder="utf-8", help="Empty: UTF-8 (a file that is not UTF-8 is refused, naming "
                                                         "it). Else e.g. latin-1, cp1252, utf-16.").strip() or None
    return None if fmt == AUTO else fmt, DELIMITERS.get(delim_name), encoding


def _text_spec(state: S.State, columns: list[str], kinds: dict) -> dict:
    """Column or template: the TextSpec arguments of the text to embed."""
    mode = S.persisted(state, st.radio, "Text to embed", S.W_TEXT_MODE, S.C_TEXT_MODE, "Column",
                       ["Column", "Template"], horizontal=True)
    text_candidates = kinds["text"] or [c for c in columns if not c.lower().startswith("sieve_")]
    preferred = state.get(S.C_TEXT_COLUMN)
    if preferred not in text_candidates:
        preferred = next((c for c in ("text", "prompt", "instruction", "content") if c in text_candidates),
                         text_candidates[0] if text_candidates else None)
    if mode == "Column":
        if state.get(S.W_TEXT_COLUMN) not in text_candidates:
            state[S.W_TEXT_COLUMN] = preferred
        col = st.selectbox("Text column", text_candidates, key=S.W_TEXT_COLUMN,
                           on_change=S.persist(state, S.W_TEXT_COLUMN, S.C_TEXT_COLUMN))
        state[S.C_TEXT_COLUMN] = col
        return {"column": col}
    default_t = "{" + preferred + "}" if preferred else ""  # the text column, never the ids
    tpl = S.persisted(state, st.text_input, "Template (columns in braces; \\n for a new line)", S.W_TEMPLATE,
                      S.C_TEMPLATE, default_t)
    return {"template": queries.template_text(tpl)}


def _optional_column(state: S.State, wkey: str, ckey: str, options: list[str]) -> None:
    """Start an optional column's box from its persisted value (or none)."""
    if state.get(wkey) not in options:
        state[wkey] = state.get(ckey) if state.get(ckey) in options else NONE


def _extra_columns(state: S.State, kinds: dict) -> str | None:
    """The optional vector column (returned; None for none) and score column (persisted)."""
    c1, c2 = st.columns(2)
    vec_opts = [NONE] + kinds["vector"]
    _optional_column(state, S.W_VECTOR_COLUMN, S.C_VECTOR_COLUMN, vec_opts)
    vec = c1.selectbox("Precomputed vector column (optional; skips the model)", vec_opts, key=S.W_VECTOR_COLUMN,
                       on_change=S.persist(state, S.W_VECTOR_COLUMN, S.C_VECTOR_COLUMN))
    score_opts = [NONE] + kinds["numeric"]
    _optional_column(state, S.W_SCORE_COLUMN, S.C_SCORE_COLUMN, score_opts)
    score = c2.selectbox("Score column (optional; for picking by score)", score_opts, key=S.W_SCORE_COLUMN)
    state[S.C_SCORE_COLUMN] = None if score == NONE else score
    return None if vec == NONE else vec


def _choose(ws) -> None:
    state = S.ss()
    source = _source(ws)
    if not source:
        st.info("Give a file path or glob, or upload a file.")
        return
    file_format, delimiter, encoding = _file_format(state)
    try:
        df, columns, paths = preview_source(source, limit=20, file_format=file_format, delimiter=delimiter,
                                            encoding=encoding)
    except C.SieveError as exc:
        C.show_error(exc)
        return
    st.markdown("**Preview**")
    st.caption(f"First {len(df)} rows of {len(paths)} file(s); {len(columns)} columns.")
    st.dataframe(df, hide_index=True, width="stretch")

    kinds = column_kinds(columns, df.attrs.get("numeric_text", ()))
    st.markdown("**Columns**")
    spec_args = _text_spec(state, columns, kinds)
    vec = _extra_columns(state, kinds)
    if st.button("Load dataset", type="primary", key=S.W_LOAD):
        info, cached = _ingest(ws, source, TextSpec(**spec_args), vec, file_format, delimiter=delimiter,
                               encoding=encoding)
        C.pin_dataset(state, info, file_format)  # this session works on it now
        C.get_map(state, ws)  # drop any map of another dataset from this session
        st.success(("Already loaded: " if cached else "Loaded: ")
                   + f"{info.n_rows:,} rows, {info.n_empty:,} empty, {info.n_duplicates:,} duplicates.")


C.run_page(body)

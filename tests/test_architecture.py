"""The architecture rules of docs/ARCHITECTURE.md, checked on the source (AST) of core/,
pages/ and app.py; nothing under test is imported.

1. The front ends (pages/, core/cli/) call functions only from the workflow layer
   (core.workflows) and the explore layer (EXPLORE_LAYER, including core.queries); they
   may import classes and constants from anywhere in core.
2. No import cycles (imports inside functions included).
3. No imports inside functions, except of a heavy or optional library (HEAVY).
4. No ``_private`` name imported (or read as ``module._name``) from another project module.
5. No module over 400 lines, no function over 60 lines.
6. core/ never imports Streamlit.

Every failure names the file, the line and the rule.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())

WORKFLOW_LAYER = {"core.workflows"}
EXPLORE_LAYER = {"core.explore", "core.explore_files", "core.search", "core.curate", "core.summaries",
                 "core.palette", "core.nn", "core.budget_settings", "core.scores", "core.queries"}
FRONT_ENDS = ("pages", "core.cli")
HEAVY = {"torch", "sentence_transformers", "transformers", "tokenizers", "huggingface_hub", "onnxruntime", "ray",
         "umap", "hdbscan", "fast_hdbscan", "evoc", "pynndescent", "numba", "scipy", "sklearn", "cuml", "cupy",
         "igraph", "leidenalg", "charset_normalizer"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


# -- the project's modules ------------------------------------------------------------------


def _dotted(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=1)
def project_files() -> dict[str, Path]:
    """{dotted module name: path relative to ROOT} of core/**, pages/** and app.py."""
    files = [p for d in ("core", "pages") for p in sorted((ROOT / d).rglob("*.py"))] + [ROOT / "app.py"]
    return {_dotted(p.relative_to(ROOT)): p.relative_to(ROOT) for p in files}


@functools.lru_cache(maxsize=None)
def parsed(rel: Path) -> ast.Module:
    return ast.parse((ROOT / rel).read_text(encoding="utf-8"), filename=str(rel))


def import_base(module: str, rel: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` in ``module`` (file ``rel``) reads from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if rel.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


# -- what a name in a module is ---------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    kind: str  # "module", "function", "class", "value", "external" or "unknown"
    origin: str  # the module that defines it (for "module": the module itself)


def _top_level(body):
    """Statements at module level, looking inside if/try/with blocks (not functions or classes)."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody"):
            yield from _top_level(getattr(node, field, []) if not isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else [])
        for handler in getattr(node, "handlers", []):
            yield from _top_level(handler.body)


@functools.lru_cache(maxsize=None)
def bindings(module: str) -> dict:
    """{name: how module-level code of ``module`` binds it}."""
    rel = project_files()[module]
    out: dict = {}
    for node in _top_level(parsed(rel).body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = ("function",)
        elif isinstance(node, ast.ClassDef):
            out[node.name] = ("class",)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            how = (("function",) if isinstance(value, ast.Lambda)
                   else ("alias", value.id) if isinstance(value, ast.Name) else ("value",))
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = how
        elif isinstance(node, ast.ImportFrom):
            base = import_base(module, rel, node)
            for a in node.names:
                out[a.asname or a.name] = ("from", base, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = ("module", a.name if a.asname else a.name.split(".")[0])
    return out


def resolve(module: str, name: str, depth: int = 0) -> Kind:
    """What ``module.name`` is, following re-exports to the module that defines it."""
    files = project_files()
    if f"{module}.{name}" in files:
        return Kind("module", f"{module}.{name}")
    if module not in files or depth > 20:
        return Kind("external" if module.split(".")[0] not in ("core", "pages", "app") else "unknown", module)
    how = bindings(module).get(name)
    if how is None:
        return Kind("unknown", module)
    if how[0] == "from":
        return resolve(how[1], how[2], depth + 1)
    if how[0] == "module":
        return Kind("module", how[1]) if how[1] in files else Kind("external", how[1])
    if how[0] == "alias":
        return resolve(module, how[1], depth + 1) if how[1] != name else Kind("unknown", module)
    return Kind(how[0], module)


def _looks_like_type_or_constant(name: str) -> bool:
    return name[:1].isupper()  # CamelCase classes, UPPER_CASE constants


# -- rule 1: the front ends call only workflows and the explore layer ---------------------------


def is_front_end(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FRONT_ENDS)


def callable_allowed(origin: str) -> bool:
    return origin in WORKFLOW_LAYER or origin in EXPLORE_LAYER or is_front_end(origin)


def front_end_violations(module: str, rel: Path, tree: ast.Module) -> list[tuple[str, int, str]]:
    """(file, line, what) for every function of a lower layer that ``tree`` imports or reads."""
    found, aliases = [], {}

    def check(kind: Kind, name: str, line: int) -> None:
        if kind.kind in ("class", "value", "module", "external") or callable_allowed(kind.origin):
            return
        if kind.kind == "unknown" and _looks_like_type_or_constant(name):
            return
        found.append((str(rel), line, f"{name} from {kind.origin}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = import_base(module, rel, node)
            if base.split(".")[0] != "core":
                continue
            for a in node.names:
                kind = resolve(base, a.name)
                if kind.kind == "module":
                    aliases[a.asname or a.name] = kind.origin
                check(kind, a.name, node.lineno)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "core":
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "core"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = _module_of(node.value, aliases)
            if owner is not None:
                check(resolve(owner, node.attr), node.attr, node.lineno)
    return found


def _module_of(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """The project module an expression names (``workflows``, ``core.store.paths``,
    ``workflows.pipeline``), else None."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _module_of(node.value, aliases)
        kind = resolve(owner, node.attr) if owner is not None else None
        return kind.origin if kind is not None and kind.kind == "module" else None
    return None


def test_front_ends_call_only_workflows_and_the_explore_layer():
    problems = []
    for module, rel in project_files().items():
        if not is_front_end(module):
            continue
        for file, line, what in front_end_violations(module, rel, parsed(rel)):
            problems.append(f"{file}:{line}: rule 1 (front ends call only core.workflows and the explore layer): "
                            f"calls {what}")
    assert not problems, "\n".join(problems)


def test_rule_1_catches_a_page_calling_a_lower_layer():
    src = ("from core.engines.local import MapParams, run_selection\n"
           "from core.store import paths\n"
           "from core import queries, workflows\n"
           "from core.explore import draw_sample\n"
           "paths.export_root('x')\n"
           "queries.local.load_map(None)\n"
           "workflows.select(None, None, None)\n")
    found = front_end_violations("pages.bad", Path("pages/bad.py"), ast.parse(src))
    assert ("pages/bad.py", 1, "run_selection from core.engines.local") in found
    assert ("pages/bad.py", 5, "export_root from core.store.paths") in found
    assert ("pages/bad.py", 6, "load_map from core.engines.local") in found
    assert not [f for f in found if "MapParams" in f[2] or "draw_sample" in f[2] or "select " in f[2]]


# -- rule 2: no import cycles -------------------------------------------------------------------


def import_edges() -> dict[str, dict[str, int]]:
    """{module: {project module it imports (anywhere in the file): first line}}."""
    files, edges = project_files(), {}
    for module, rel in files.items():
        out = edges.setdefault(module, {})
        for node in ast.walk(parsed(rel)):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = import_base(module, rel, node)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t in files and t != module:
                    out.setdefault(t, node.lineno)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    files, edges = project_files(), import_edges()
    problems = []
    for comp in cycles(edges):
        members = set(comp)
        lines = [f"{files[a]}:{line}: rule 2 (no import cycles): imports {b}"
                 for a in comp for b, line in sorted(edges[a].items()) if b in members]
        problems.append(f"cycle {' <-> '.join(comp)}:\n  " + "\n  ".join(lines))
    assert not problems, "\n".join(problems)


def test_rule_2_finds_a_cycle():
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


# -- rules 3, 4, 6: how modules import ----------------------------------------------------------


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def function_import_violations(rel: Path, tree: ast.Module) -> list[str]:
    """Imports inside functions of anything but a HEAVY library."""
    seen, problems = set(), []
    for fn in _functions(tree):
        for node in ast.walk(fn):
            if id(node) in seen or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            seen.add(id(node))
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else ["." * node.level + (node.module or "")])
            bad = [n for n in names if node_level(node) or n.split(".")[0] not in HEAVY]
            if bad:
                problems.append(f"{rel}:{node.lineno}: rule 3 (imports inside functions only defer a heavy "
                                f"library): {fn.name}() imports {', '.join(bad)}")
    return problems


def node_level(node) -> int:
    return getattr(node, "level", 0) or 0


def test_imports_inside_functions_only_defer_heavy_libraries():
    problems = [p for rel in project_files().values() for p in function_import_violations(rel, parsed(rel))]
    assert not problems, "\n".join(problems)


def test_rule_3_flags_a_deferred_project_import():
    tree = ast.parse("def f():\n    import torch\n    from core.stages import embed\n    from . import x\n")
    problems = function_import_violations(Path("core/x.py"), tree)
    assert len(problems) == 2 and "core/x.py:3: rule 3" in problems[0] and "core/x.py:4: rule 3" in problems[1]


def private_import_violations(module: str, rel: Path, tree: ast.Module) -> list[str]:
    """``from project_module import _name`` and ``project_module._name`` in another module."""
    files, problems, aliases = project_files(), [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = import_base(module, rel, node)
            if base.split(".")[0] not in ("core", "pages", "app"):
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    problems.append(f"{rel}:{node.lineno}: rule 4 (no private names across modules): "
                                    f"imports {a.name} from {base}")
                elif f"{base}.{a.name}" in files:
                    aliases[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in files:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            problems.append(f"{rel}:{node.lineno}: rule 4 (no private names across modules): "
                            f"reads {node.attr} of {aliases[node.value.id]}")
    return problems


def test_no_private_names_across_modules():
    problems = [p for m, rel in project_files().items() for p in private_import_violations(m, rel, parsed(rel))]
    assert not problems, "\n".join(problems)


def test_rule_4_flags_private_names():
    tree = ast.parse("from core.store.workspace import _x, Workspace\nfrom pages import common as C\nC._sources([])\n")
    problems = private_import_violations("pages.bad", Path("pages/bad.py"), tree)
    assert [p.split(": rule")[0] for p in problems] == ["pages/bad.py:1", "pages/bad.py:3"]


def streamlit_imports(rel: Path, tree: ast.Module) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        if any(n.split(".")[0] == "streamlit" for n in names):
            problems.append(f"{rel}:{node.lineno}: rule 6 (core/ never imports Streamlit)")
    return problems


def test_core_never_imports_streamlit():
    problems = [p for m, rel in project_files().items() if m.split(".")[0] == "core"
                for p in streamlit_imports(rel, parsed(rel))]
    assert not problems, "\n".join(problems)


def test_rule_6_flags_streamlit():
    tree = ast.parse("def f():\n    from streamlit.runtime import x\nimport streamlit as st\n")
    assert len(streamlit_imports(Path("core/x.py"), tree)) == 2


# -- rule 5: sizes ----------------------------------------------------------------------------


def size_violations(rel: Path, source: str) -> list[str]:
    problems = []
    n = len(source.splitlines())
    if n > MAX_MODULE_LINES:
        problems.append(f"{rel}:1: rule 5 (modules up to {MAX_MODULE_LINES} lines): {n} lines")
    for fn in _functions(ast.parse(source)):
        length = fn.end_lineno - fn.lineno + 1
        if length > MAX_FUNCTION_LINES:
            problems.append(f"{rel}:{fn.lineno}: rule 5 (functions up to {MAX_FUNCTION_LINES} lines): "
                            f"{fn.name}() has {length}")
    return problems


def test_modules_and_functions_are_small():
    problems = [p for rel in project_files().values() for p in size_violations(rel, (ROOT / rel).read_text())]
    assert not problems, "\n".join(problems)


def test_rule_5_flags_a_long_function():
    source = "def f():\n" + "    x = 1\n" * 60
    assert size_violations(Path("core/x.py"), source) == ["core/x.py:1: rule 5 (functions up to 60 lines): f() has 61"]

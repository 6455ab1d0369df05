"""The package's import structure: no import cycles, and layers that import only downwards.

Every module under python/bitgraph is parsed with ``ast`` (nothing is imported), and every
import statement counts: module level, inside functions (the "lazy" imports that hide a cycle
from Python but not from a reader) and under ``if TYPE_CHECKING``. An import of a name from a
package counts as an import of that package's ``__init__``; ``from pkg import submodule`` as an
import of the submodule.

LAYERS lists the layers from the bottom up. A module may import modules of its own layer and of
the layers below it, never one above: kernels and backends know nothing of filters, attributes
or index classes, and the file format knows nothing of the index kinds it stores (they register
themselves with :mod:`bitgraph.persistence`). Every module must be in exactly one layer, so a new
module has to be placed deliberately.
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "python"
PACKAGE = "bitgraph"

# Bottom first. Patterns are fnmatch patterns over dotted module names ("bitgraph" is the
# package's __init__).
LAYERS: list[tuple[str, list[str]]] = [
    # Leaves: import nothing from bitgraph.
    ("foundation", ["bitgraph.errors", "bitgraph._version", "bitgraph._growth",
                    "bitgraph._heap", "bitgraph._filter_ops", "bitgraph._rows"]),
    # Argument / state checks and the index file format (no index kinds: a registry).
    ("checks and files", ["bitgraph._validation", "bitgraph.state_checks",
                          "bitgraph.persistence"]),
    # The backends (native extension, numba kernels and cores, the backend switch) and the
    # numpy reference of the binary codes.
    ("kernels and backends", ["bitgraph._core", "bitgraph._numba", "bitgraph._numba.*",
                              "bitgraph._backend", "bitgraph.binary.reference",
                              "bitgraph.binary.offsets",
                              # the CUDA kernel set (CuPy loaded lazily): device checks, the
                              # tiling planner, the scans and the device encoder
                              "bitgraph._cuda", "bitgraph._cuda.*"]),
    # What the indexes are built from: filters and their compiler, the planner, results, the
    # binarizer and its training, the re-rank store.
    ("API building blocks", ["bitgraph.filters", "bitgraph.planner", "bitgraph.result",
                             "bitgraph.attribute_columns", "bitgraph.attributes",
                             "bitgraph._search_batches", "bitgraph.binary.binarizer",
                             "bitgraph.binary.training", "bitgraph.binary.selection",
                             "bitgraph._rerank_store",
                             "bitgraph._reranking",
                             # IVF training, list packing and the partition state (numpy)
                             "bitgraph.ivf.training", "bitgraph.ivf.layout",
                             "bitgraph.ivf.partition"]),
    # The index classes.
    ("indexes", ["bitgraph._index_base", "bitgraph._device", "bitgraph.hnsw", "bitgraph.flat",
                 "bitgraph.binary.index", "bitgraph.ivf.index"]),
    # The client of the service (speaks HTTP; results and filters from below).
    ("client", ["bitgraph.client"]),
    # Package namespaces and the pickle alias.
    ("facade", ["bitgraph", "bitgraph.binary", "bitgraph.ivf", "bitgraph.loading"]),
    # Above the public API: the HTTP service, and the command line that starts it.
    ("service and tools", ["bitgraph.server", "bitgraph.server.[!_]*"]),
    # The sharded layer on Ray (bitgraph[ray]): the public API, and the service's request
    # parsing and routes for its Ray Serve front. Nothing below imports it (or Ray).
    ("distributed", ["bitgraph.distributed", "bitgraph.distributed.*"]),
    # The command line: starts the service or the sharded front (bitgraph serve [--ray]).
    # (python -m bitgraph.server runs the command line's serve)
    ("command line", ["bitgraph.cli", "bitgraph._cli_files", "bitgraph.server.__main__"]),
]

# The API layer proper: what no low module may import (checked by name as well as by layer, so
# the message says what went wrong).
API_LAYERS = {"API building blocks", "indexes", "facade and tools"}


def _module_files() -> dict[str, Path]:
    """Dotted module name -> source file (a .pyi stands for an extension module)."""
    out: dict[str, Path] = {}
    root = SRC / PACKAGE
    for path in sorted(root.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi") or "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if path.suffix == ".py" or name not in out:
            out[name] = path
    return out


def _imports(name: str, path: Path, modules: set[str]) -> dict[str, int]:
    """Intra-package modules that ``name`` imports -> line of the first such import."""
    is_package = path.stem == "__init__"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        if target != name and (target == PACKAGE or target.startswith(PACKAGE + ".")):
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                add(sub if sub in modules else module, node.lineno)
    return found


def _graph() -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    files = _module_files()
    names = set(files)
    return files, {name: _imports(name, path, names) for name, path in files.items()}


def _layer_of(name: str) -> list[int]:
    return [i for i, (_, patterns) in enumerate(LAYERS)
            if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _describe(graph: dict[str, dict[str, int]], comp: list[str]) -> str:
    """A strongly connected component as its imports (with lines), for the failure message."""
    members = set(comp)
    edges = [f"    {a} -> {b} (line {graph[a][b]})" for a in comp for b in sorted(graph[a])
             if b in members]
    return f"  {len(comp)} modules import each other:\n" + "\n".join(edges)


def test_every_module_is_in_exactly_one_layer():
    files, _ = _graph()
    assert "bitgraph._numba.slots" in files and "bitgraph.persistence" in files  # found them
    wrong = {name: [LAYERS[i][0] for i in _layer_of(name)] for name in files
             if len(_layer_of(name)) != 1}
    assert not wrong, f"modules not in exactly one layer of LAYERS: {wrong}"


def test_no_import_cycles():
    _, graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles (module-level and function-level imports):\n" + \
        "\n".join(_describe(graph, c) for c in cycles)


def test_layers_import_only_downwards():
    files, graph = _graph()
    bad = []
    for name, targets in sorted(graph.items()):
        mine = _layer_of(name)
        for target, line in sorted(targets.items()):
            theirs = _layer_of(target)
            if len(mine) == 1 and len(theirs) == 1 and theirs[0] > mine[0]:
                bad.append(f"{name} ({LAYERS[mine[0]][0]}) imports {target} "
                           f"({LAYERS[theirs[0]][0]}) at {files[name].name}:{line}")
    assert not bad, "imports that go up a layer:\n" + "\n".join(bad)


@pytest.mark.parametrize("low", ["bitgraph._numba.*", "bitgraph._validation", "bitgraph.errors",
                                 "bitgraph._growth", "bitgraph._heap", "bitgraph.persistence",
                                 "bitgraph.state_checks", "bitgraph._backend"])
def test_low_modules_import_nothing_from_the_api_layer(low):
    _, graph = _graph()
    api = {name for name in graph
           if len(_layer_of(name)) == 1 and LAYERS[_layer_of(name)[0]][0] in API_LAYERS}
    checked = [name for name in graph if fnmatch.fnmatchcase(name, low)]
    assert checked, low
    bad = {name: sorted(set(graph[name]) & api) for name in checked if set(graph[name]) & api}
    assert not bad, f"low modules importing the API layer: {bad}"


def test_the_import_graph_sees_function_level_imports(tmp_path):
    """The parser itself: a lazy import inside a function is an edge like any other."""
    pkg = tmp_path / "bitgraph"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (pkg / "b.py").write_text("from . import a\nfrom .a import f as g\n")
    modules = {"bitgraph", "bitgraph.a", "bitgraph.b"}
    graph = {m: _imports(m, pkg / (m.split(".")[-1] + ".py") if m != "bitgraph"
                         else pkg / "__init__.py", modules) for m in modules}
    assert graph["bitgraph.a"] == {"bitgraph.b": 2}
    assert graph["bitgraph.b"] == {"bitgraph.a": 1}
    assert _cycles(graph) == [["bitgraph.a", "bitgraph.b"]]


def test_every_index_kind_is_registered_on_any_import():
    """The file format finds the index classes through the registry they fill when they are
    imported; importing any bitgraph module (as unpickling bitgraph.persistence.loads does)
    runs the package's __init__, which imports them all."""
    code = ("import bitgraph.persistence as p, sys; "
            "sys.stdout.write(','.join(sorted(p._INDEX_KINDS)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "binary,flat,hnsw,ivf"

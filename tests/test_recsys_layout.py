"""gpa_lib.recsys imports only downwards: ranking < data < sim, models < eval, and no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import gpa_lib.recsys

ROOT = Path(gpa_lib.recsys.__file__).parent
PACKAGE = "gpa_lib.recsys"
#: layer of each top-level part; a module may import its own layer or a lower one
LAYERS = {"ranking": 0, "data": 1, "sim": 2, "models": 2, "eval": 3, "": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def imports(path: Path, known: set[str]) -> set[str]:
    """Every gpa_lib.recsys module ``path`` imports, at any depth (TYPE_CHECKING and local too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.startswith(PACKAGE) and name in known:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: imports(path, set(files)) - {name} for name, path in files.items()}


def layer(name: str) -> int:
    rest = name[len(PACKAGE) + 1 :] if name != PACKAGE else ""
    return LAYERS[rest.split(".")[0]]


def test_no_import_cycles_within_recsys():
    edges = graph()
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_every_module_imports_only_its_own_layer_or_lower():
    upward = [
        f"{a} -> {b}" for a, targets in graph().items() for b in targets if layer(b) > layer(a)
    ]
    assert not upward, "imports upwards: " + ", ".join(sorted(upward))


def test_no_re_export_shim_for_the_backtest():
    # The backtest lives in one module, gpa_lib.recsys.eval.backtest; no second path to its names.
    assert not (ROOT / "backtest.py").exists()

"""gpa_lib.recsys imports only downwards: ranking < data < sim, models < eval, and no cycles."""

from __future__ import annotations

from helpers import PACKAGE_ROOT, find_cycle, import_graph

ROOT = PACKAGE_ROOT / "recsys"
PACKAGE = "gpa_lib.recsys"
#: layer of each top-level part; a module may import its own layer or a lower one
LAYERS = {"ranking": 0, "data": 1, "sim": 2, "models": 2, "eval": 3, "": 4}


def graph() -> dict[str, set[str]]:
    """Module -> the gpa_lib.recsys modules it imports: the package's one import graph, within recsys."""
    return {
        name: {t for t in targets if t == PACKAGE or t.startswith(PACKAGE + ".")}
        for name, targets in import_graph(PACKAGE).items()
    }


def layer(name: str) -> int:
    rest = name[len(PACKAGE) + 1 :] if name != PACKAGE else ""
    return LAYERS[rest.split(".")[0]]


def test_no_import_cycles_within_recsys():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_imports_only_its_own_layer_or_lower():
    upward = [
        f"{a} -> {b}" for a, targets in graph().items() for b in targets if layer(b) > layer(a)
    ]
    assert not upward, "imports upwards: " + ", ".join(sorted(upward))


def test_no_re_export_shim_for_the_backtest():
    # The backtest lives in one module, gpa_lib.recsys.eval.backtest; no second path to its names.
    assert not (ROOT / "backtest.py").exists()

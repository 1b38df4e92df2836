"""Helpers several test files share: attention inputs and the package's import graph.

Imported as ``from helpers import ...`` (pytest puts ``tests/`` on the path, as for ``oracle``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import torch

import gpa_lib

PACKAGE_ROOT = Path(gpa_lib.__file__).resolve().parent


# ---------------------------------------------------------------------- attention inputs


def make_qkv(
    B: int,
    h: int,
    q_grid: tuple[int, int],
    k_grid: tuple[int, int],
    D: int,
    Dv: int | None = None,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standard normal q (B, h, *q_grid, D), k (B, h, *k_grid, D) and v (B, h, *k_grid, Dv)
    (``Dv`` defaults to ``D``), drawn in that order from one generator: ``generator`` when given
    (so a test can draw more from it afterwards), else a new one seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed) if generator is None else generator
    q = torch.randn(B, h, *q_grid, D, generator=g, dtype=dtype)
    k = torch.randn(B, h, *k_grid, D, generator=g, dtype=dtype)
    v = torch.randn(B, h, *k_grid, D if Dv is None else Dv, generator=g, dtype=dtype)
    return q, k, v


# ---------------------------------------------------------------------- the import graph


def module_name(path: Path) -> str:
    """``gpa_lib/a/b.py`` -> ``gpa_lib.a.b``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every module name ``path`` names in an ``import`` or ``from ... import`` (any depth)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def import_graph(prefix: str = "gpa_lib") -> dict[str, set[str]]:
    """Module -> the gpa_lib modules it imports explicitly (at any depth of the file, functions too),
    for the modules whose name is ``prefix`` or starts with ``prefix.``.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``. The
    implicit import of a parent package (``a.b`` runs ``a/__init__``) is not an edge.
    """
    files = {module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        if not (name == prefix or name.startswith(prefix + ".")):
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in files}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    if f"{target}.{alias.name}" in files:
                        edges.add(f"{target}.{alias.name}")
                    elif target in files:
                        edges.add(target)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as ``[a, b, ..., a]``, or None; nodes and edges in sorted order."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None

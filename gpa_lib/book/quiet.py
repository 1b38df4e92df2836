"""Quiet pages: hide the cells that are bookkeeping, keep the code that teaches.

Two kinds of cell are noise on a rendered page:

- papermill's ``injected-parameters`` cell. :func:`hide_injected_parameters` tags it ``remove-cell``
  when it only restates the parameters cell (the published ``full`` profile), else ``hide-cell``, so
  a ``smoke`` or ``gpu`` page still shows, one click away, which values it ran with. It runs on the
  staged copy at build time; the executed notebook keeps the cell untagged.
- cells that only glue values (and write the chapter's result file): every statement is a ``glue(...)``, ``glue_all(...)``
  or ``write_result(...)`` call, an ``if``/``for`` over such calls, or an assignment of plain
  arithmetic feeding them, and the cell shows nothing. :func:`glue_only_cells` finds them;
  ``python -m gpa_lib.book quiet`` tags them ``remove-cell`` in the chapter sources (``--check`` only
  lists the untagged ones). Cells where gluing is mixed with computation stay visible: hiding them would
  hide the code that teaches; moving their ``glue`` calls to a cell of their own makes them quiet.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat

#: The tag given to glue-only cells in the sources.
GLUE_TAG = "remove-cell"
BOOKKEEPING_CALLS = frozenset({"glue", "glue_all", "write_result"})
#: Calls allowed on the right-hand side of an assignment in a glue-only cell: conversions and the clock.
PLAIN_CALLS = frozenset(
    {"float", "int", "str", "len", "round", "min", "max", "abs", "perf_counter"}
)


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return None


def _is_bookkeeping(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Expr):
        return _call_name(stmt.value) in BOOKKEEPING_CALLS
    if isinstance(stmt, ast.If | ast.For):
        return all(map(_is_bookkeeping, stmt.body)) and all(map(_is_bookkeeping, stmt.orelse))
    if isinstance(stmt, ast.Assign | ast.AnnAssign):
        if stmt.value is None:
            return False
        if _call_name(stmt.value) in BOOKKEEPING_CALLS:  # path = write_result(...)
            return True
        calls = [_call_name(n) for n in ast.walk(stmt.value) if isinstance(n, ast.Call)]
        return all(name in PLAIN_CALLS for name in calls)
    return False


def is_glue_only(source: str) -> bool:
    """Does this code cell only glue values (and write results), with nothing that teaches or shows?"""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    glues = [
        n
        for n in ast.walk(ast.Module(body=body, type_ignores=[]))
        if _call_name(n) in BOOKKEEPING_CALLS
    ]
    return bool(body) and bool(glues) and all(map(_is_bookkeeping, body))


def glue_only_cells(source: Path) -> list[int]:
    """Indices (among all cells, as Jupytext reads them) of the glue-only code cells of a chapter."""
    import jupytext

    nb = jupytext.read(source)
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and "parameters" not in cell.metadata.get("tags", [])
        and is_glue_only(cell.source)
    ]


CELL_MARKER = re.compile(r"^# %%(?P<rest>.*)$")


def tag_glue_only_cells(source: Path, *, write: bool = True) -> list[int]:
    """Add ``remove-cell`` to the header line of each untagged glue-only cell; return their indices.

    The file is edited as text, one ``# %%`` line per cell, so the diff only adds tags.
    """
    import jupytext

    nb = jupytext.read(source)
    wanted = [
        i for i in glue_only_cells(source) if GLUE_TAG not in nb.cells[i].metadata.get("tags", [])
    ]
    if not wanted or not write:
        return wanted
    lines = source.read_text().splitlines(keepends=True)
    markers = [n for n, line in enumerate(lines) if CELL_MARKER.match(line.rstrip("\n"))]
    # Jupytext numbers cells from the first marker; any text before it (after the header) is a cell too.
    offset = len(nb.cells) - len(markers)
    for i in wanted:
        n = markers[i - offset]
        rest = CELL_MARKER.match(lines[n].rstrip("\n")).group("rest")
        tags = re.search(r"tags=\[(.*?)\]", rest)
        if tags:
            inner = tags.group(1).strip()
            new = f'tags=[{inner}, "{GLUE_TAG}"]' if inner else f'tags=["{GLUE_TAG}"]'
            rest = rest[: tags.start()] + new + rest[tags.end() :]
        else:
            rest = f' tags=["{GLUE_TAG}"]' + rest
        lines[n] = f"# %%{rest}\n"
    text = "".join(lines)
    after = jupytext.reads(text, fmt="py:percent")
    changed = [
        i
        for i, (old, new) in enumerate(zip(nb.cells, after.cells, strict=False))
        if old.source != new.source or old.cell_type != new.cell_type
    ]
    tagged = [i for i, cell in enumerate(after.cells) if GLUE_TAG in cell.metadata.get("tags", [])]
    if changed or len(after.cells) != len(nb.cells) or not set(wanted) <= set(tagged):
        raise RuntimeError(f"{source.name}: tagging would change more than tags; left as it was")
    source.write_text(text)
    return wanted


def hide_injected_parameters(nb: Any, defaults: dict[str, Any]) -> None:
    """Tag papermill's injected cell ``remove-cell`` if it restates ``defaults``, else ``hide-cell``."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "injected-parameters" not in tags:
            continue
        injected = _assigned_literals(cell.source)
        same = injected is not None and all(
            defaults.get(k, object()) == v for k, v in injected.items()
        )
        tag = "remove-cell" if same else "hide-cell"
        if tag not in tags:
            cell.metadata["tags"] = [*tags, tag]


def _assigned_literals(source: str) -> dict[str, Any] | None:
    try:
        body = ast.parse(source).body
        return {
            stmt.targets[0].id: ast.literal_eval(stmt.value)
            for stmt in body
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
        }
    except (SyntaxError, ValueError):
        return None


def quiet_copy(executed: Path, target: Path, defaults: dict[str, Any]) -> None:
    """Copy an executed notebook for the build, with the injected-parameters cell tagged."""
    nb = nbformat.read(executed, as_version=4)
    hide_injected_parameters(nb, defaults)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)

"""Quiet pages: glue-only cells are found and tagged without touching their code; injected cells hidden."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import nbformat
import pytest

from gpa_lib.book import BookProject
from gpa_lib.book.__main__ import main
from gpa_lib.book.quiet import (
    hide_injected_parameters,
    is_glue_only,
    tag_glue_only_cells,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"
HEADER = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     name: python3\n# ---\n\n"


@pytest.mark.parametrize(
    "source",
    [
        'glue("a", 1, display=False)',
        'wall_s = time.perf_counter() - start\nglue("wall", wall_s, display=False)',
        'if profile != "smoke":\n    write_result("x", {"a": rows.to_dict()}, profile=profile)\nglue("w", w)',
        'for name in names:\n    glue(f"k_{name}", float(table[name]), display=False)',
        "glue_all(study.values)",
    ],
    ids=["one-glue", "clock", "write-result", "loop", "glue-all"],
)
def test_glue_only(source: str):
    assert is_glue_only(source)


@pytest.mark.parametrize(
    "source",
    [
        'model = fit(data)\nglue("auc", model.auc, display=False)',  # the fit teaches
        'glue("a", 1, display=False)\ntable',  # shows a table
        'glue("a", 1)\nplt.show()',
        "x = 1",  # no glue at all
        "",
    ],
    ids=["computes", "displays", "figure", "no-glue", "empty"],
)
def test_not_glue_only(source: str):
    assert not is_glue_only(source)


def test_tagging_only_adds_tags(tmp_path: Path):
    path = tmp_path / "chapter.py"
    text = (
        HEADER
        + "# %% [markdown]\n# Prose.\n\n"
        + '# %% tags=["parameters"]\nprofile = "full"\n\n'
        + "# %%\nresult = fit()\nglue('a', result.auc)\n\n"
        + "# %%\nglue('b', 2, display=False)\n\n"
        + '# %% tags=["hide-input"]\nglue("c", 3, display=False)\n'
    )
    path.write_text(text)
    assert tag_glue_only_cells(path) == [3, 4]
    after = path.read_text()
    diff = [d for d in difflib.ndiff(text.splitlines(), after.splitlines()) if d[0] in "+-"]
    assert diff == [
        "- # %%",
        '+ # %% tags=["remove-cell"]',
        '- # %% tags=["hide-input"]',
        '+ # %% tags=["hide-input", "remove-cell"]',
    ]
    assert "# %% tags=[\"remove-cell\"]\nglue('b', 2, display=False)" in after
    assert '# %% tags=["hide-input", "remove-cell"]\nglue("c", 3' in after
    assert "# %%\nresult = fit()" in after  # computing cell untouched
    assert tag_glue_only_cells(path) == []  # idempotent


def _nb_with_injected(source: str):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells = [nbformat.v4.new_code_cell('profile = "full"\nn = 10'), cell]
    return nb


def test_injected_parameters_removed_when_they_restate_the_defaults():
    nb = _nb_with_injected('# Parameters\nprofile = "full"\n')
    hide_injected_parameters(nb, {"profile": "full", "n": 10})
    assert nb.cells[1].metadata["tags"] == ["injected-parameters", "remove-cell"]


def test_injected_parameters_collapsed_when_they_change_a_value():
    nb = _nb_with_injected('# Parameters\nprofile = "smoke"\nn = 5\n')
    hide_injected_parameters(nb, {"profile": "full", "n": 10})
    assert nb.cells[1].metadata["tags"] == ["injected-parameters", "hide-cell"]


def test_every_glue_only_cell_of_the_real_book_is_tagged(capsys):
    """New glue-only cells: run `python -m gpa_lib.book quiet` to tag them remove-cell."""
    code = main(["quiet", "--check"])
    out = capsys.readouterr().out
    assert code == 0, out


@pytest.mark.notebooks
def test_rendered_page_collapses_the_injected_cell(tmp_path: Path, capsys):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    assert main(["all", "--profile", "smoke", "--root", str(root)]) == 0, capsys.readouterr()
    html = (root / "_build" / "html-smoke" / "notebooks" / "01_tiny.html").read_text()
    assert "tag_injected-parameters tag_hide-cell" in html
    executed = nbformat.read(root / "_build" / "executed" / "smoke" / "01_tiny.ipynb", 4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected[0].metadata["tags"] == [
        "injected-parameters"
    ]  # the executed notebook is as run
    assert BookProject(root).notebook("01_tiny").parameters["n"] == 10

"""Comparing the glued values of two executions, timings left out."""

from __future__ import annotations

import nbformat
import pytest

from gpa_lib.book.compare import compare_folders, main


def executed(folder, name, values):
    """An executed notebook with one glue output per (key, value)."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": repr(value)},
            metadata={"scrapbook": {"name": key, "mime_prefix": ""}},
        )
        for key, value in values.items()
    ]
    nb.cells.append(cell)
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_identical_numbers_pass_and_timings_are_ignored(tmp_path, capsys):
    executed(tmp_path / "a", "04_x", {"ch4_auc": 0.71, "ch4_wall_s": 12.0})
    executed(tmp_path / "b", "04_x", {"ch4_auc": 0.71, "ch4_wall_s": 15.5})
    (row,) = compare_folders(tmp_path / "a", tmp_path / "b")
    assert (row.compared, row.ignored, row.differing) == (1, 1, {})
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "04_x" in capsys.readouterr().out


def test_a_changed_number_is_reported(tmp_path, capsys):
    executed(tmp_path / "a", "05_y", {"ch5_map": 0.05, "ch5_extra": 1})
    executed(tmp_path / "b", "05_y", {"ch5_map": 0.06})
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert (
        "ch5_map differs: '0.05' vs '0.06'" in out and "ch5_extra is glued in only one run" in out
    )


def test_folders_without_a_common_notebook(tmp_path):
    executed(tmp_path / "a", "01", {})
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="no executed notebook is in both"):
        compare_folders(tmp_path / "a", tmp_path / "b")

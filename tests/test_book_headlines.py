"""The intro's table of claims and verdicts: read from the chapters' glue, never typed."""

from __future__ import annotations

import nbformat

from gpa_lib.book.headlines import (
    HEADLINES,
    MISSING,
    Headline,
    fill,
    headline_table,
    markdown_table,
    parse_glued,
)


def _executed(path, values):
    """An executed notebook whose one cell glued ``values`` as myst-nb does."""
    outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": repr(value)},
            metadata={"scrapbook": {"name": key, "mime_prefix": ""}},
        )
        for key, value in values.items()
    ]
    cell = nbformat.v4.new_code_cell("glue_all(values)", outputs=outputs)
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


ROW = Headline(
    "P", "a claim", "gap {x_gap:.2f} ({x_words})", "07_x", "x-section", verdict="x_verdict"
)


def test_glued_text_becomes_values():
    assert parse_glued("0.25") == 0.25
    assert parse_glued("'supported'") == "supported"
    assert parse_glued("not python") == "not python"


def test_a_row_is_filled_from_the_glue_and_says_what_is_missing():
    measured, verdict = fill(ROW, {"x_gap": 0.123, "x_words": "`a` b", "x_verdict": "supported"})
    assert (measured, verdict) == ("gap 0.12 (a b)", "supported")
    measured, verdict = fill(ROW, {"x_gap": 0.1})
    assert verdict == MISSING and "x_words" in measured and "x_verdict" in measured
    measured, verdict = fill(ROW, {"x_gap": "n/a", "x_words": "", "x_verdict": "supported"})
    assert verdict == MISSING and measured.startswith("cannot show")


def test_the_table_reads_executed_notebooks(tmp_path):
    _executed(
        tmp_path / "07_x.ipynb", {"x_gap": -0.5, "x_words": "below", "x_verdict": "contradicted"}
    )
    table = headline_table(tmp_path, [ROW])
    assert table.loc[0, "measured in this book"] == "gap -0.50 (below)"
    assert table.loc[0, "verdict"] == "contradicted"
    assert table.loc[0, "where"] == "{ref}`chapter 7 <x-section>`"
    assert headline_table(tmp_path / "nowhere", [ROW]).loc[0, "verdict"] == MISSING
    text = markdown_table(table)
    assert text.splitlines()[0].startswith("| paper | claim |") and "| contradicted |" in text


def test_every_headline_is_glued_by_its_chapter(smoke_build):
    from gpa_lib.book.execute import executed_dir

    project, _ = smoke_build
    table = headline_table(executed_dir(project, "smoke"))
    assert not table["verdict"].eq(MISSING).any(), table[table["verdict"].eq(MISSING)]
    assert len(table) == len(HEADLINES)

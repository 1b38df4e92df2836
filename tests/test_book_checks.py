"""Checks over the smoke build: numbers stated twice agree, shares are shares, no build path leaks.

The build is the session fixture ``smoke_build`` of conftest.py (shared with test_book_smoke.py).
"""

from __future__ import annotations

import pytest

from gpa_lib.book import glued_values
from gpa_lib.book.checks import paths_in_files, share_violations, timing_mismatches

REPRODUCE = "book/reproduce.html"


@pytest.mark.notebooks
def test_chapter_footers_and_the_reproduce_table_agree(smoke_build):
    project, index = smoke_build
    pages = {nb.name: f"{nb.toc_entry}.html" for nb in project.notebooks() if not nb.is_summary}
    assert timing_mismatches(index.parent, pages, REPRODUCE) == []
    # the check sees something: at least one chapter states its time
    assert any("This chapter ran in" in (index.parent / p).read_text() for p in pages.values())


@pytest.mark.notebooks
def test_glued_shares_are_shares(smoke_build):
    project, _ = smoke_build
    executed = project.build_dir / "executed" / "smoke"
    problems, checked = [], 0
    for nb in project.notebooks():
        values = glued_values(executed / f"{nb.name}.ipynb")
        problems += [f"{nb.name}: {p}" for p in share_violations(values)]
        checked += sum("share" in k or "fraction" in k for k in values)
    assert problems == [] and checked > 5


@pytest.mark.notebooks
def test_no_output_holds_the_build_machines_paths(smoke_build):
    """Pages, published notebooks and executed notebooks name no absolute path of the build."""
    project, index = smoke_build
    html = index.parent
    files = [p for p in html.rglob("*.html") if not p.relative_to(html).parts[0] == "_static"]
    files += list(html.rglob("*.ipynb"))
    files += list((project.build_dir / "executed" / "smoke").glob("*.ipynb"))
    assert len(files) > 10
    assert paths_in_files(files, [str(project.build_dir), str(project.root)]) == []


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ({"ch9_image_share": "0.25", "ch9_new_share_pct": "32.5"}, []),
        ({"ch9_image_share": "1.5"}, ["ch9_image_share"]),
        ({"ch9_keys_fraction_pct": "120.0"}, ["ch9_keys_fraction_pct"]),
        ({"ch9_image_share_pct": "-1.0"}, ["ch9_image_share_pct"]),
        ({"ch9_image_share": "'a lot'"}, ["ch9_image_share"]),
        ({"ch9_shareholder_s": "30.0", "ch9_wall_s": "99"}, []),  # not a share by its words
        ({"ch5_lstm_share_all_map_lo": "-12.0"}, []),  # a share of a gap closed may be negative
    ],
)
def test_share_rule(values: dict, bad: list):
    assert [p.split(" ")[0] for p in share_violations(values)] == bad


def test_footer_check_catches_a_disagreement(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "ch.html").write_text('This chapter ran in <span class="pasted-text">5</span> s.')
    (tmp_path / REPRODUCE).write_text(
        '<table><thead><tr style="x"><th></th><th>notebook</th><th>chapter ran in (s)</th></tr>'
        "</thead><tbody><tr><th>0</th><td>ch</td><td>6</td></tr>"
        "<tr><th>1</th><td>other</td><td>3</td></tr></tbody></table>"
    )
    (tmp_path / "other.html").write_text("no footer")
    problems = timing_mismatches(tmp_path, {"ch": "ch.html", "other": "other.html"}, REPRODUCE)
    assert problems == [
        "ch.html says it ran in 5 s, book/reproduce.html says 6",
        "book/reproduce.html gives other 3 s, which its page does not state",
    ]


@pytest.mark.notebooks
def test_running_and_building_the_book_writes_no_file_of_the_work_tree(smoke_build):
    """Nothing outside the build folder changes: no committed result, no stray file in notebooks/."""
    project, _ = smoke_build
    if project.git_status_change is None:
        pytest.skip("not a git checkout")
    before, after = project.git_status_change
    assert after == before

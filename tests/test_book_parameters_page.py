"""The generated parameters page lists every parameter of every chapter, per profile, with a command."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from gpa_lib.book import BookProject
from gpa_lib.book.__main__ import main
from gpa_lib.book.parameters_page import (
    PAGE,
    parameter_comments,
    profile_columns,
    render_parameters_page,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"


def rows_of(page: str) -> dict[str, list[list[str]]]:
    """Section title -> table rows (cells stripped), from the rendered Markdown."""
    sections: dict[str, list[list[str]]] = {}
    current = None
    for line in page.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        elif current is not None and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").replace("\\|", "¦").split("|")]
            current.append(cells)
    return sections


def test_real_book_page_lists_every_parameter_with_each_profile_value():
    project = BookProject()
    page = render_parameters_page(project)
    sections = rows_of(page)
    columns = profile_columns(project)
    assert columns[:3] == ["full", "smoke", "gpu"]
    chapters = [nb for nb in project.notebooks() if not nb.is_summary]
    assert len(sections) == len(chapters)
    for nb, rows in zip(chapters, sections.values(), strict=True):
        by_name = {row[0].strip("`"): row for row in rows}
        assert list(by_name) == list(nb.parameters), nb.name
        for profile_index, profile in enumerate(columns, start=1):
            values = nb.parameters | project.parameters_for(nb, profile)
            for name, value in values.items():
                shown = by_name[name][profile_index].strip("*`")
                expected = repr(value) if isinstance(value, str) else json.dumps(value)
                assert shown == expected, (nb.name, profile, name)
        for name, row in by_name.items():
            command = shlex.split(row[-1].strip("`"))
            assert command[:2] == ["papermill", f"notebooks/{nb.name}.ipynb"]
            assert name in row[-1]


def test_comments_are_read_from_the_parameters_cell(tmp_path: Path):
    source = tmp_path / "ch.py"
    source.write_text(
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     name: python3\n# ---\n\n"
        '# %% tags=["parameters"]\nprofile = "full"\n'
        "# the number of things\nn = 3\n"
        "m = 2  # trailing\n"
        "flag = (\n    True  # inside the brackets\n)\n"
    )
    assert parameter_comments(source) == {
        "profile": "",
        "n": "the number of things",
        "m": "trailing",
        "flag": "inside the brackets",
    }


@pytest.mark.notebooks
def test_page_is_built_and_listed(tmp_path: Path, capsys):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    toc = root / "_toc.yml"
    toc.write_text(toc.read_text() + f"  - file: {PAGE}\n")
    code = main(["all", "--profile", "smoke", "--root", str(root)])
    assert code == 0, capsys.readouterr()
    html = (root / "_build" / "html-smoke" / f"{PAGE}.html").read_text()
    for name in ("n", "scale", "fail", "sleep_s", "seed", "profile"):
        assert f'<code class="docutils literal notranslate"><span class="pre">{name}</span>' in html
    assert "papermill" in html and "notebooks/01_tiny.ipynb" in html

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
    _title,
    parameter_comments,
    profile_columns,
    render_parameters_page,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"


def rows_of(page: str) -> dict[str, list[list[str]]]:
    """Section title -> rows of its list-table (cells stripped, header row dropped)."""
    sections: dict[str, list[list[str]]] = {}
    current = None
    for line in page.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        elif current is not None and line.startswith("* - "):
            current.append([line[4:].strip()])
        elif current is not None and line.startswith("  - ") and current:
            current[-1].append(line[4:].strip())
    return {title: rows[1:] for title, rows in sections.items()}


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
        block = page.split(f"## {_title(nb)}", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
        commands = [shlex.split(line) for line in block.strip().splitlines()]
        assert len(commands) == len(nb.parameters)
        for name, command in zip(by_name, commands, strict=True):
            assert command[:2] == ["papermill", f"notebooks/{nb.name}.ipynb"]
            if command[-2] == "-y":  # a list, as YAML
                assert command[-1].startswith(f"{name}: "), (nb.name, name)
            else:
                assert command[-3:-1] == ["-p", name], (nb.name, name)


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

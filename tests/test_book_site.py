"""Launch buttons: Binder files, the published notebooks, and a link check that catches a broken one."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from gpa_lib.book import BookProject
from gpa_lib.book.__main__ import main
from gpa_lib.book.site import (
    BINDER_POSTBUILD,
    binder_generated_files,
    check_links,
    check_setup_cells,
    site_config,
    staged_config,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"
LAUNCH = """
repository:
  url: https://github.com/example/tiny
  branch: main
launch_buttons:
  notebook_interface: jupyterlab
  binderhub_url: https://mybinder.org
  colab_url: https://colab.research.google.com
gpa_book:
  notebooks_branch: executed-notebooks
"""


def test_binder_writes_a_notebook_for_every_executed_page():
    project = BookProject()
    made = binder_generated_files(REPO)
    for nb in project.notebooks():
        assert f"{nb.toc_entry}.ipynb" in made, nb.name


def test_binder_installs_cpu_torch_the_pins_jupytext_and_lightfm():
    lines = [
        shlex.split(x, comments=True) for x in (REPO / BINDER_POSTBUILD).read_text().splitlines()
    ]
    commands = [" ".join(words) for words in lines if words]
    torch = next(c for c in commands if "torch==" in c)
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch
    pins = {
        line.split("==")[0]: line.split("==")[1]
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    assert torch.endswith(f"torch=={pins['torch']}")
    assert any("-c constraints.txt" in c and "[book,anchors]" in c for c in commands)
    assert any(c.startswith("bash scripts/install_lightfm.sh") for c in commands)
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    requirement = (REPO / "binder" / "requirements.txt").read_text()
    assert f"jupytext=={pins['jupytext']}" in requirement


def test_workflow_pushes_the_branch_the_colab_buttons_name():
    branch = site_config(BookProject())["notebooks_branch"]
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    push = [s for s in steps if "git push" in s.get("run", "")]
    assert len(push) == 1 and f" {branch}" in push[0]["run"]
    assert workflow["permissions"]["contents"] == "write"


@pytest.mark.notebooks
def test_tiny_book_links_are_checked_and_a_broken_one_is_caught(tmp_path: Path, capsys):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    (root / "_config.yml").write_text((root / "_config.yml").read_text() + LAUNCH)
    (root / "binder").mkdir()
    (root / "binder" / "postBuild").write_text("jupytext --to ipynb notebooks/*.py\n")
    code = main(["all", "--profile", "smoke", "--root", str(root)])
    assert code == 0, capsys.readouterr()
    html = root / "_build" / "html-smoke"
    page = (html / "notebooks" / "01_tiny.html").read_text()
    assert 'href="01_tiny.ipynb"' in page
    assert (
        "colab.research.google.com/github/example/tiny/blob/executed-notebooks/notebooks/01_tiny.ipynb"
        in page
    )
    assert "mybinder.org/v2/gh/example/tiny/main?urlpath=lab/tree/notebooks/01_tiny.ipynb" in page
    published = nbformat.read(html / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert "google.colab" in published.cells[0].source
    assert "git+https://github.com/example/tiny@main" in published.cells[0].source
    project = BookProject(root)
    assert check_links(project, html) == []
    assert check_setup_cells(project, html) == []

    (html / "notebooks" / "01_tiny.ipynb").unlink()
    problems = check_links(project, html)
    assert any("download link 01_tiny.ipynb" in p for p in problems)
    assert any("Colab opens notebooks/01_tiny.ipynb" in p for p in problems)
    (root / "binder" / "postBuild").write_text("echo nothing\n")
    assert any("Binder opens notebooks/01_tiny.ipynb" in p for p in check_links(project, html))


@pytest.mark.parametrize(
    ("url", "configured"),
    [
        ("https://github.com/example/tiny", True),
        ("https://github.com/gpa-compendium/gpa-compendium", False),
        ("", False),
        ("https://gitlab.com/example/tiny", False),
    ],
)
def test_only_a_real_github_repository_gets_launch_buttons(tmp_path: Path, url: str, configured):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    (root / "_config.yml").write_text(
        (root / "_config.yml").read_text() + LAUNCH.replace("https://github.com/example/tiny", url)
    )
    project = BookProject(root)
    assert site_config(project)["configured"] is configured
    staged = yaml.safe_load(staged_config(project))
    has_launch = "colab_url" in staged["launch_buttons"] and "repository" in staged
    assert has_launch is configured


def test_a_launch_link_without_a_configured_repository_is_caught(tmp_path: Path):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    placeholder = LAUNCH.replace("example/tiny", "gpa-compendium/gpa-compendium")
    (root / "_config.yml").write_text((root / "_config.yml").read_text() + placeholder)
    html = tmp_path / "html"
    (html / "notebooks").mkdir(parents=True)
    colab = (
        "https://colab.research.google.com/github/gpa-compendium/gpa-compendium/blob/main/x.ipynb"
    )
    (html / "notebooks" / "01_tiny.html").write_text(f'<a href="{colab}">Colab</a>')
    problems = check_links(BookProject(root), html)
    assert len(problems) == 1 and "names no repository" in problems[0]


@pytest.mark.notebooks
def test_placeholder_repository_builds_without_launch_buttons(tmp_path: Path, capsys):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    placeholder = LAUNCH.replace("example/tiny", "gpa-compendium/gpa-compendium")
    (root / "_config.yml").write_text((root / "_config.yml").read_text() + placeholder)
    code = main(["all", "--profile", "smoke", "--root", str(root)])
    assert code == 0, capsys.readouterr()
    html = root / "_build" / "html-smoke"
    page = (html / "notebooks" / "01_tiny.html").read_text()
    assert "mybinder.org" not in page and "colab.research.google.com" not in page
    assert "gpa-compendium/gpa-compendium" not in page
    assert 'href="01_tiny.ipynb"' in page
    published = nbformat.read(html / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert not any("google.colab" in c.source for c in published.cells)
    assert check_setup_cells(BookProject(root), html) == []

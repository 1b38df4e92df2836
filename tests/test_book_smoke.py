"""Every chapter of the real book under the smoke profile, then a warnings-as-errors build.

The build is the session fixture ``smoke_build`` of conftest.py, shared with test_book_browser.py.
"""

from __future__ import annotations

import re

import pytest

from gpa_lib.book import BookProject, glued_values, run_notebooks

pytestmark = pytest.mark.notebooks


def test_every_page_is_rendered(smoke_build):
    project, index = smoke_build
    html = index.parent
    for entry in project.toc_entries():
        assert (html / f"{entry}.html").exists(), f"{entry} was not rendered"


def test_every_chapter_glues_what_its_prose_cites(smoke_build):
    project, _ = smoke_build
    executed = project.build_dir / "executed" / "smoke"
    for nb in project.notebooks():
        cited = set()
        for line in nb.source.read_text().splitlines():
            if line.startswith("#") and "{glue:" in line:
                cited.update(re.findall(r"\{glue:(?:text|md)?\}`([^`:]+)", line))  # inline roles
                cited.update(re.findall(r"\{glue:figure\}\s+(\S+)", line))  # figure directives
        missing = cited - set(glued_values(executed / f"{nb.name}.ipynb"))
        assert not missing, f"{nb.name} cites glue keys it never glued: {sorted(missing)}"


def test_smoke_profile_glues_identical_values_twice(smoke_build, tmp_path):
    """Two runs of one chapter under the smoke profile glue the same values (fixed seeds throughout).

    Chapter 2 is used because its smoke profile glues no wall-clock measurement.
    """
    project, _ = smoke_build
    again = BookProject(build_dir=tmp_path)
    run_notebooks(again, "smoke", only="02_gpa_kernel")
    first = glued_values(project.build_dir / "executed" / "smoke" / "02_gpa_kernel.ipynb")
    second = glued_values(again.build_dir / "executed" / "smoke" / "02_gpa_kernel.ipynb")
    assert first == second and len(first) > 10


def test_mathjax_is_served_with_the_book(smoke_build):
    """Equations render offline: the pages load MathJax from _static, which the build filled."""
    _, index = smoke_build
    html = index.parent
    page = (html / "notebooks" / "01_gpa_complexity.html").read_text()
    assert "_static/mathjax/tex-chtml-full.js" in page
    assert "cdn.jsdelivr.net/npm/mathjax" not in page
    assert (html / "_static" / "mathjax" / "tex-chtml-full.js").is_file()
    assert any((html / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))


def test_every_launch_and_download_link_points_at_a_provided_file(smoke_build):
    """Every launch and download link is checked against the one repository setting of _config.yml.

    The committed _config.yml names a placeholder repository: the pages then have no Binder or Colab
    button and no Colab setup cell, only the download of the executed notebook beside each page.
    """
    from gpa_lib.book.site import (
        check_links,
        check_setup_cells,
        launch_and_download_links,
        launch_hosts,
        site_config,
    )

    project, index = smoke_build
    html = index.parent
    assert check_links(project, html) == []
    assert check_setup_cells(project, html) == []
    cfg = site_config(project)
    links = launch_and_download_links(html, launch_hosts(project))
    for nb in project.notebooks():
        page = f"{nb.toc_entry}.html"
        urls = [url for p, url in links if p == page]
        launch = [u for u in urls if "://" in u]
        if cfg["configured"]:
            assert any(u.startswith(f"{cfg['launch']['binderhub_url']}/v2/gh/") for u in launch)
            assert any("colab.research.google.com" in u for u in launch), page
        else:
            assert launch == [], page
        assert f"{nb.name}.ipynb" in urls, (
            page
        )  # the download button: the executed notebook beside it

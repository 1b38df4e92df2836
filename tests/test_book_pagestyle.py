"""Glued values are set in the weight of their sentence (gpa_lib/book/pagestyle.py)."""

from __future__ import annotations

from gpa_lib.book.pagestyle import CSS, CSS_FILE


def test_the_stylesheet_unbolds_glued_text():
    assert "span.pasted-text" in CSS and "font-weight: inherit" in CSS


def test_every_chapter_page_loads_the_stylesheet(smoke_build):
    _, index = smoke_build
    html = index.parent
    assert (html / "_static" / CSS_FILE).read_text() == CSS
    for page in sorted((html / "notebooks").glob("*.html")):
        assert f"_static/{CSS_FILE}" in page.read_text(), page.name

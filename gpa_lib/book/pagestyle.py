"""Sphinx extension: the book's own page style, one small stylesheet added after the theme's.

Listed in ``_config.yml`` under ``sphinx: extra_extensions``. MyST-NB sets every glued value
(``{glue:text}``) in bold, so a sentence with numbers glued into it reads as a row of bold words, and
a glued sentence as a whole bold paragraph; here glued text takes the weight of the text around it.
The stylesheet is written into ``_static`` at the end of an HTML build.
"""

from __future__ import annotations

from pathlib import Path

CSS_FILE = "gpa-book.css"
CSS = """/* gpa_lib/book/pagestyle.py: glued values read as part of their sentence */
span.pasted-text {
  font-weight: inherit;
}
"""


def _write_css(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / CSS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(CSS)


def setup(app):
    app.add_css_file(CSS_FILE, priority=900)  # after the theme's and MyST-NB's stylesheets
    app.connect("build-finished", _write_css)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Sphinx extension: serve plotly.js with the book, on the pages that hold an interactive figure.

Listed in ``_config.yml`` under ``sphinx: extra_extensions``. At the end of an HTML build it copies
the ``plotly.min.js`` of the installed plotly package (about 4.6 MiB, the only copy in the site)
into ``_static``; every page whose body contains a :data:`~gpa_lib.interactive.linked.CSS_CLASS`
div loads it from there, before the page's own scripts. Other pages load nothing, and no page
reaches a CDN.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gpa_lib.interactive.linked import CSS_CLASS, PLOTLY_FILE, plotly_js_path


def needs_plotly(body: str) -> bool:
    """Does a rendered page body hold an interactive figure?"""
    return f'class="{CSS_CLASS}"' in body


def _add_plotly(app, pagename, templatename, context, doctree) -> None:
    if needs_plotly(context.get("body", "") or ""):
        app.add_js_file(PLOTLY_FILE)  # this page only (Sphinx >= 3.5)


def _copy_plotly(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / PLOTLY_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(plotly_js_path(), target)


def setup(app):
    plotly_js_path()  # fail at the start of the build, with the install hint, if plotly is missing
    app.connect("html-page-context", _add_plotly)
    app.connect("build-finished", _copy_plotly)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The built pages in a real browser: headless Chromium (Debian's package) over the DevTools pipe.

Chapter 1's interactive figure must draw (SVG inside its div), answer a moved slider, and raise no
console error; the backtest figure is checked the same way on a page of its own. Screenshots are
kept in ``_build/test-artifacts/browser/`` for a person to look at. Without a Chromium the tests skip
(``.ci/run`` installs Debian's ``chromium``; ``GPA_CHROMIUM`` points at another executable).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpa_lib.interactive.browser import Browser, find_chromium

pytest.importorskip("plotly", reason="interactive figures need plotly (the book extra)")

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium: install Debian's package (apt-get install chromium) or set GPA_CHROMIUM",
)
#: Files for a person to look at, kept after the test: the repository's _build/test-artifacts/.
SHOTS = Path(__file__).resolve().parent.parent / "_build" / "test-artifacts" / "browser"
FIGURE = ".gpa-interactive"
READY = f"document.querySelector('{FIGURE}[data-gpa-ready]') !== null"
GD = f"document.querySelector('{FIGURE}')"

#: Console errors of the theme itself, on every page of a Jupyter Book 1 site (not of our figures):
#: sphinx-thebe's config script is written into the page twice, and the pydata theme finds no
#: stored light/dark mode on a file:// page. Matched by substring; anything else fails the test.
THEME_ERRORS = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode",
)


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (starting one takes a second or two)."""
    with Browser(height=1000) as running:
        yield running


def own_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(known in e for known in THEME_ERRORS)]


def drawn_bars(browser: Browser) -> int:
    return browser.evaluate(f"{GD}.querySelectorAll('svg.main-svg g.point path').length")


@pytest.mark.notebooks
def test_chapter_1_interactive_figure_renders_and_responds(smoke_build, browser):
    _, index = smoke_build
    html = index.parent
    page_path = html / "notebooks" / "01_gpa_complexity.html"
    text = page_path.read_text()
    assert '<script src="../_static/plotly.min.js' in text  # served with the book
    assert (html / "_static" / "plotly.min.js").is_file()
    for other in html.rglob("*.html"):  # no page fetches plotly from elsewhere
        assert "cdn.plot.ly" not in other.read_text(), other

    page = browser.open(page_path)
    assert browser.wait_for(READY, timeout=30), f"the figure never drew; console: {page.messages}"
    assert drawn_bars(browser) > 0
    before = browser.evaluate(f"{GD}.data[2].x")
    title = browser.evaluate(f"{GD}.layout.title.text")
    sliders = browser.evaluate(f"{GD}.layout.sliders.map(s => s.name)")
    assert sliders == ["topk", "pool", "cell"]
    labels = browser.evaluate(f"{GD}.layout.sliders[0].steps.map(s => s.label)")
    other = labels[0] if title.startswith(f"topk {labels[-1]},") else labels[-1]
    assert browser.evaluate(f"{GD}.gpaSet('topk', {json.dumps(other)})")
    assert browser.wait_for(f"{GD}.layout.title.text.startsWith('topk {other},')", timeout=10)
    after = browser.evaluate(f"{GD}.data[2].x")
    assert after != before, "moving topk did not change the kept mass"
    assert browser.evaluate(f"{GD}.layout.sliders[0].active") == labels.index(other)
    assert drawn_bars(browser) > 0
    shot = browser.screenshot(SHOTS / "01_gpa_complexity-tradeoff.png", selector=FIGURE)
    browser.screenshot(SHOTS / "01_gpa_complexity-page.png")
    assert shot.stat().st_size > 10_000
    assert own_errors(page.errors) == [], page.errors


def test_backtest_figure_renders_in_the_browser(tmp_path, browser):
    """The recommendation figure on a bare page with the packaged plotly.js, choices made by script."""
    import shutil

    from gpa_lib.interactive import plotly_js_path
    from gpa_lib.interactive.backtest import backtest_figure

    payload = json.loads(
        (Path(__file__).parent / "fixtures" / "interactive" / "backtest.json").read_text()
    )
    shutil.copy2(plotly_js_path(), tmp_path / "plotly.min.js")
    page_path = tmp_path / "backtest.html"
    page_path.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script>'
        f"</head><body>{backtest_figure(payload).html()}</body></html>"
    )
    page = browser.open(page_path)
    assert browser.wait_for(READY, timeout=30), page.messages
    start = browser.evaluate(f"{GD}.data[0].x")
    for name, label in (("slice", "new"), ("metric", "MAP@12"), ("model", "LSTM")):
        assert browser.evaluate(f"{GD}.gpaSet({json.dumps(name)}, {json.dumps(label)})")
    assert browser.wait_for(f"{GD}.layout.xaxis.title.text === 'MAP@12 (new articles)'")
    assert browser.evaluate(f"{GD}.data[0].x") != start
    widths = browser.evaluate(f"{GD}.data.slice(1).map(t => t.line.width)")
    assert widths[1] > widths[0] and widths[1] > widths[2]  # LSTM (second model) drawn bold
    browser.screenshot(SHOTS / "backtest-fixture.png", selector=FIGURE)
    assert page.errors == []


@pytest.mark.notebooks
def test_backtest_figure_menus_and_titles_do_not_overlap_in_the_column(tmp_path, browser):
    """The committed backtest's figure (its real model names) in a div as wide as the book's text
    column (772 px): no dropdown covers another's label, no subplot title runs into the next."""
    import shutil

    from gpa_lib.interactive import plotly_js_path
    from gpa_lib.interactive.backtest import backtest_figure
    from gpa_lib.results import read_result

    shutil.copy2(plotly_js_path(), tmp_path / "plotly.min.js")
    page_path = tmp_path / "column.html"
    page_path.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script>'
        '</head><body><div style="width:772px">'
        f"{backtest_figure(read_result('backtest')).html()}</div></body></html>"
    )
    page = browser.open(page_path)
    assert browser.wait_for(READY, timeout=30), page.messages
    browser.screenshot(SHOTS / "backtest-column.png", selector=FIGURE)
    assert overlapping_labels(browser) == []


#: The boxes of a figure's dropdown headers and annotations (menu labels, subplot titles), in
#: page pixels, with the text each holds.
BOXES = f"""Array.from({GD}.querySelectorAll(
  'g.updatemenu-header-group, g.annotation')).map(function (g) {{
  var r = g.getBoundingClientRect();
  return [g.textContent.trim(), r.left, r.top, r.right, r.bottom];
}})"""


def overlapping_labels(browser: Browser) -> list[tuple[str, str]]:
    """Pairs of dropdowns and annotations whose drawn boxes intersect (more than a pixel)."""
    boxes = browser.evaluate(BOXES)
    pairs = []
    for i, (a, *p) in enumerate(boxes):
        for b, *q in boxes[i + 1 :]:
            if min(p[2], q[2]) - max(p[0], q[0]) > 1 and min(p[3], q[3]) - max(p[1], q[1]) > 1:
                pairs.append((a, b))
    return pairs


#: The first text node holding a verdict word, as a page offset in pixels (-1: none on the page).
FIRST_VERDICT = """(function () {
  var w = document.createTreeWalker(document.querySelector('article') || document.body,
                                    NodeFilter.SHOW_TEXT);
  var n;
  while ((n = w.nextNode())) {
    if (/\\b(supported|contradicted)\\b/.test(n.textContent)) {
      var r = document.createRange(); r.selectNodeContents(n);
      return r.getBoundingClientRect().top + window.scrollY;
    }
  }
  return -1;
})()"""


@pytest.mark.notebooks
def test_every_chapter_states_a_verdict_on_its_first_screen(smoke_build, browser):
    """Each chapter and the intro show a verdict word (supported / not supported / contradicted)
    within the first screen (1000 px), and every figure on the page is numbered; screenshots of the
    first screens are kept for a person to look at."""
    _, index = smoke_build
    html = index.parent
    pages = sorted((html / "notebooks").glob("0*.html")) + [html / "book" / "intro.html"]
    for page_path in pages:
        browser.open(page_path)
        top = browser.evaluate(FIRST_VERDICT)
        assert 0 <= top < 1000, f"{page_path.name}: first verdict word at {top} px"
        browser.screenshot(SHOTS / f"first-screen-{page_path.stem}.png")
        figures = browser.evaluate("document.querySelectorAll('article figure').length")
        numbers = browser.evaluate("document.querySelectorAll('article .caption-number').length")
        assert figures == numbers, f"{page_path.name}: {figures} figures, {numbers} numbered"

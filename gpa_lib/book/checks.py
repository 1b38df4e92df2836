"""Checks over a built book: numbers stated twice agree, shares are shares, no build path leaks.

Run by ``tests/test_book_checks.py`` over the smoke build; each function returns a list of problems,
one line each, empty when the book passes.

- :func:`timing_mismatches`: a chapter's last line ("This chapter ran in N s") and the reproduce
  page's table state the same number. Both come from the chapter's glued ``*_wall_s`` value, which the
  runner copies into the run summary (:func:`gpa_lib.book.execute.chapter_wall_s`).
- :func:`share_violations`: a glued value whose key calls it a share or a fraction (the words
  ``share``, ``fraction`` or ``frac`` between underscores) is a part of a whole: in [0, 1], or in
  [0, 100] when the key also says ``pct`` or ``percent``. Shares of a *gap closed* (how far a model
  gets from a baseline towards the oracle) are not parts of a whole, can be negative or exceed it,
  and are named in :data:`GAP_SHARE_KEYS`.
- :func:`paths_in_files`: no page or published notebook holds an absolute path of the build machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from html import unescape
from pathlib import Path

SHARE_KEY = re.compile(r"(?:^|_)(?:share|fraction|frac)(?:_|$)")
PERCENT_KEY = re.compile(r"(?:^|_)(?:pct|percent)(?:_|$)")
#: Glue keys that say "share" for the share of a gap closed (chapter 5: the LSTM's and SASRec's share
#: of the oracle's gain over the static model, in percent), which may lie outside [0, 100].
GAP_SHARE_KEYS = re.compile(r"^ch5_(?:lstm|sas)_share_")
#: How a chapter states its own wall time in its last line, as rendered.
FOOTER = re.compile(r'This chapter ran in <span class="pasted-text">([^<]+)</span> s')
ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S)
CELL = re.compile(r"<t[dh](?:\s[^>]*)?>(.*?)</t[dh]>", re.S)
#: The reproduce page's table column with the chapters' own wall times (book/reproduce.py).
CHAPTER_COLUMN = "chapter ran in (s)"


def share_violations(values: Mapping[str, str], exempt: re.Pattern = GAP_SHARE_KEYS) -> list[str]:
    """Glued values (key -> ``text/plain``) whose key says share or fraction but whose value is not
    one: outside [0, 1] ([0, 100] for a percentage), or not a number."""
    problems = []
    for key, text in sorted(values.items()):
        if not SHARE_KEY.search(key) or exempt.search(key):
            continue
        upper = 100.0 if PERCENT_KEY.search(key) else 1.0
        try:
            value = float(text)
        except ValueError:
            problems.append(f"{key} = {text!r}: a share glued as something other than a number")
            continue
        if math.isnan(value) or not 0.0 <= value <= upper:
            problems.append(f"{key} = {value!r}: a share must lie in [0, {upper:g}]")
    return problems


def reproduce_table(html: str) -> dict[str, dict[str, str]]:
    """The reproduce page's table of notebooks: notebook name -> column -> cell text."""
    start = html.find(f"<th>{CHAPTER_COLUMN}</th>")
    if start < 0:
        return {}
    table = html[html.rfind("<table", 0, start) : html.find("</table>", start)]
    rows = [[unescape(c).strip() for c in CELL.findall(r)] for r in ROW.findall(table)]
    header, body = rows[0], rows[1:]
    return {row[header.index("notebook")]: dict(zip(header, row, strict=True)) for row in body}


def timing_mismatches(html_dir: Path, pages: Mapping[str, str], reproduce: str) -> list[str]:
    """Chapter footers ("This chapter ran in N s") against the reproduce table's column.

    ``pages``: notebook name -> its page relative to ``html_dir``; ``reproduce``: the reproduce page.
    """
    table = reproduce_table((html_dir / reproduce).read_text())
    if not table:
        return [f"{reproduce} has no table with a column {CHAPTER_COLUMN!r}"]
    problems = []
    for name, page in pages.items():
        footers = FOOTER.findall((html_dir / page).read_text())
        stated = table.get(name, {}).get(CHAPTER_COLUMN, "—")
        if len(footers) > 1:
            problems.append(f"{page} states its wall time {len(footers)} times")
        elif footers and footers[0] != stated:
            problems.append(f"{page} says it ran in {footers[0]} s, {reproduce} says {stated}")
        elif not footers and stated != "—":
            problems.append(f"{reproduce} gives {name} {stated} s, which its page does not state")
    return problems


def paths_in_files(files: Iterable[Path], needles: Iterable[str]) -> list[str]:
    """``file: needle`` for every file that contains one of the absolute paths ``needles``."""
    needles = [n for n in needles if n and n != "/"]
    problems = []
    for path in files:
        text = path.read_text(errors="replace")
        problems += [f"{path}: {needle}" for needle in needles if needle in text]
    return problems

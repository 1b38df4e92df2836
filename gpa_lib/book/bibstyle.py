"""A Sphinx extension: bibliography entries labelled by author and year, "Jetchev et al. 2021".

sphinxcontrib-bibtex's ``bibtex_reference_style: author_year`` makes citations in the text read
"Jetchev et al. [2021]"; the list of references still numbers its entries unless the pybtex style
gives them author-year labels. This registers that style as ``authoryear`` (pybtex's ``unsrt``
formatting, entries sorted by author, year and title); ``_config.yml`` lists this module under
``sphinx: extra_extensions`` and names the style in ``bibtex_default_style``.
"""

from __future__ import annotations

from collections import Counter

from pybtex.markup import LaTeXParser
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle

STYLE = "authoryear"


def _surname(person) -> str:
    """A person's last name as plain text (``Y{\\i}ld{\\i}r{\\i}m`` -> ``Yıldırım``)."""
    return LaTeXParser(" ".join(person.prelast_names + person.last_names)).parse().render_as("text")


def author_year(entry) -> str:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in persons]
    if not names:
        who = entry.fields.get("title", entry.key)[:20]
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who} {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Surname Year", "A and B Year", "A et al. Year"; equal labels get a, b, ... appended."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(e) for e in entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label]]
                seen[label] += 1
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = SortingStyle


def setup(app):
    register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

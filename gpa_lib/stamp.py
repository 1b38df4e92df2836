"""The provenance footer of every static figure drawn from committed ``data/results/*.json``: the
file (or files), the commit that produced it, the machine, the date and whether the library code the
numbers depend on changed since that commit, so that a figure copied out of the book still says where
its numbers were measured.

One home for every part of the book (attention, pose, recommendation): each part names the code its
numbers come from (``depends_on``, e.g. ``("gpa_lib/recsys",)``). matplotlib is imported only when a
figure is stamped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The colour and size (points) of the footer: readable when looked for, quiet otherwise.
STAMP_COLOR, STAMP_SIZE = "0.6", 6.5
#: The ``gid`` of the footer's text artist, by which tests and the book find it.
STAMP_GID = "provenance-stamp"

_CHANGED_WORDS = {True: "code changed since", False: "code unchanged since", None: ""}


def _as_lists(
    source: str | Sequence[str], provenance: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[Mapping[str, Any]]]:
    """One source and its provenance, or several sources and one provenance each, as two lists."""
    sources = [source] if isinstance(source, str) else list(source)
    provenances = [provenance] if isinstance(provenance, Mapping) else list(provenance)
    if not sources or not all(sources):
        raise ValueError(
            f"source={source!r} is empty: name the results file the figure is drawn from"
        )
    if len(provenances) != len(sources):
        raise ValueError(
            f"{len(sources)} sources {sources} but {len(provenances)} provenance blocks: "
            "give one provenance per source"
        )
    return sources, provenances


def machine_name(provenance: Mapping[str, Any]) -> str:
    """The GPU, else the CPU, named by a result's provenance block (empty when it names none)."""
    device = provenance.get("device") or {}
    machine = provenance.get("gpu") or device.get("gpu") or device.get("cpu")
    return str(machine) if machine else ""


def _distinct(values: Sequence[str]) -> list[str]:
    return [value for i, value in enumerate(values) if value and value not in values[:i]]


def stamp_text(
    source: str | Sequence[str],
    provenance: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    changed: bool | None = None,
) -> str:
    """``"data/results/<source> · commit 7da8163 · NVIDIA H200 · 2026-12-04 · code unchanged
    since"``: the file, the short commit, the machine (its GPU, else its CPU), the date of the run and
    whether the code it depends on changed since that commit (``changed``; left out when ``None``);
    a missing field is left out.

    Several files (``source`` a sequence, ``provenance`` one block per file) read
    ``"data/results/a.json + b.json · commit 7da8163 · …"`` when they share a commit, and
    ``"commits 7da8163 + fc5abd2"`` (one per file, in order) when they do not; machines and dates
    are listed once each."""
    sources, provenances = _as_lists(source, provenance)
    commits = [str(p.get("commit") or "")[:7] for p in provenances]
    if len(_distinct(commits)) > 1:
        commit = "commits " + " + ".join(c or "?" for c in commits)
    else:
        commit = f"commit {commits[0]}" if commits[0] else ""
    parts = [
        "data/results/" + " + ".join(sources),
        commit,
        " + ".join(_distinct([machine_name(p) for p in provenances])),
        " + ".join(_distinct([str(p.get("date") or "")[:10] for p in provenances])),
        _CHANGED_WORDS[changed],
    ]
    return " · ".join(part for part in parts if part)


def code_changed_since_all(commits: Sequence[str], depends_on: tuple[str, ...]) -> bool | None:
    """Whether ``depends_on`` changed since any of ``commits``: ``True`` if it did since one of
    them, ``False`` if it did since none, ``None`` when git cannot tell for one and none changed."""
    from gpa_lib.results import code_changed_since

    answers = [code_changed_since(commit, depends_on) for commit in _distinct(list(commits))]
    if any(answer is True for answer in answers):
        return True
    return False if answers and all(answer is False for answer in answers) else None


def stamp_provenance(
    fig: Figure,
    source: str | Sequence[str],
    provenance: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    depends_on: tuple[str, ...],
    *,
    rect: tuple[float, float, float, float] = (0, 0, 1, 1),
) -> Figure:
    """Write :func:`stamp_text` as a footer at the bottom right of ``fig`` (figure coordinates, so it
    moves with no axis) and return ``fig``. ``source`` is the file name under ``data/results``
    (or several, with one ``provenance`` block each); ``depends_on`` the library paths (relative to
    the repository) its numbers come from, whose change since the result's commit is
    :func:`gpa_lib.results.code_changed_since` (left out where git cannot tell).

    The figure is laid out again above a strip of ``STAMP_SIZE`` points for the footer: by
    ``tight_layout`` within ``rect`` (figure fraction: the one the figure was laid out in, say
    ``(0, 0, 1, 0.9)`` under a figure legend) when it has no layout engine or a tight one, else its
    constrained layout is given the same strip."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    sources, provenances = _as_lists(source, provenance)
    changed = code_changed_since_all([str(p.get("commit") or "") for p in provenances], depends_on)
    text = fit_width(stamp_text(sources, provenances, changed), fig.get_figwidth() * 72)
    lines = text.count("\n") + 1
    strip = (1.1 * lines + 1.1) * STAMP_SIZE / 72 / fig.get_figheight()  # footer, figure fraction
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.set(rect=(0, strip, 1, 1 - strip))  # (left, bottom, width, height)
    else:
        left, bottom, right, top = rect
        fig.tight_layout(rect=(left, max(bottom, strip), right, top))
    fig.text(
        0.995, 0.005, text, ha="right", va="bottom",
        color=STAMP_COLOR, fontsize=STAMP_SIZE, gid=STAMP_GID,
    )  # fmt: skip
    return fig


#: A footer character's mean width in points per point of font size (DejaVu Sans, mixed text).
CHAR_WIDTH = 0.6


def fit_width(text: str, width_pt: float, size: float = STAMP_SIZE) -> str:
    """``text`` as is when it fits ``width_pt`` points at ``size`` points, else broken into two
    lines at the ``" · "`` nearest its middle (the file names on the first line)."""
    if len(text) * size * CHAR_WIDTH <= 0.98 * width_pt or " · " not in text:
        return text
    parts = text.split(" · ")
    cuts = range(1, len(parts))
    cut = min(cuts, key=lambda i: abs(len(" · ".join(parts[:i])) - len(text) / 2))
    return " · ".join(parts[:cut]) + "\n" + " · ".join(parts[cut:])


def stamp_results(
    fig: Figure,
    payloads: Mapping[str, Mapping[str, Any] | None],
    depends_on: tuple[str, ...],
    *,
    rect: tuple[float, float, float, float] = (0, 0, 1, 1),
) -> Figure:
    """Stamp ``fig`` with the committed results ``payloads`` it is drawn from (``{result name:
    payload}``, as :func:`gpa_lib.results.read_result` returns them) and return it. Only a payload
    with a ``provenance`` block (every file :func:`gpa_lib.results.write_result` wrote has one)
    is named; none, no footer: a result computed in the chapter is not stamped."""
    read = {name: p for name, p in payloads.items() if p is not None and "provenance" in p}
    if not read:
        return fig
    sources = [result_source(name) for name in read]
    provenances = [payload["provenance"] for payload in read.values()]
    return stamp_provenance(fig, sources, provenances, depends_on, rect=rect)


def stamp_footer(fig: Figure) -> list[str]:
    """The footer texts on ``fig`` (none or one), on one line: what tests and checks read back."""
    return [
        text.get_text().replace("\n", " · ") for text in fig.texts if text.get_gid() == STAMP_GID
    ]


def result_source(name: str) -> str:
    """The file name under ``data/results`` of the result ``name`` (``"claims_stores"`` ->
    ``"claims_stores.json"``), as :func:`gpa_lib.results.read_result` reads it."""
    return name if name.endswith(".json") else f"{name}.json"

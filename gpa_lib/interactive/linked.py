"""A Plotly figure with several controls whose effects combine, rendered as HTML that needs no kernel.

Plotly's own sliders and dropdowns each replay one fixed update, so two of them cannot combine (the
``pool`` slider does not know where the ``topk`` slider stands). Here every control is a Plotly
slider or dropdown whose method is ``"skip"``; a short script listens to their events, keeps the
current value of each control, and applies precomputed updates looked up by those values:

- an :class:`UpdateGroup` names the controls it depends on and maps each combination of their values
  (joined with ``|``) to per-trace attribute values and layout changes;
- groups touch disjoint attributes, so a dropdown that highlights a model and one that chooses a
  metric combine without a table of every combination.

:meth:`LinkedFigure.html` returns a ``<div>`` and a ``<script>`` that expects ``window.Plotly``: the
book serves ``plotly.min.js`` itself (:mod:`gpa_lib.interactive.sphinx`), so no page loads anything
from a CDN. In a notebook the figure is shown by ``_repr_html_``; where plotly.js is absent (a
Jupyter kernel, Colab) the div says so instead of failing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The class of every interactive figure's div: the Sphinx extension adds plotly.js to pages with it.
CSS_CLASS = "gpa-interactive"
PLOTLY_FILE = "plotly.min.js"


def require_plotly():
    """The ``plotly`` package, or an ImportError that says which extra installs it."""
    try:
        import plotly
    except ImportError as err:  # pragma: no cover - the book extra pins it
        raise ImportError(
            "interactive figures need plotly; install the book extra: "
            'pip install -c constraints.txt -e ".[book]"'
        ) from err
    return plotly


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` shipped inside the installed plotly package."""
    plotly = require_plotly()
    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"plotly {plotly.__version__} ships no {path}")
    return path


@dataclass(frozen=True)
class Control:
    """One slider or dropdown: ``labels`` shown to the reader, ``values`` used as lookup keys."""

    name: str  # the key of this control in UpdateGroup.on and in the lookup keys
    title: str  # shown beside the control
    labels: Sequence[str]  # one per option, shown on the control
    values: Sequence[str] | None = None  # lookup key of each option (None: the labels)
    initial: int = 0  # index of the option shown first
    kind: str = "slider"  # "slider" or "dropdown"

    def __post_init__(self):
        if self.kind not in ("slider", "dropdown"):
            raise ValueError(f"kind={self.kind!r} must be 'slider' or 'dropdown'")
        if not self.labels:
            raise ValueError(f"control {self.name!r} has no options")
        if self.values is not None and len(self.values) != len(self.labels):
            raise ValueError(
                f"control {self.name!r}: {len(self.values)} values for {len(self.labels)} labels"
            )
        if not 0 <= self.initial < len(self.labels):
            raise ValueError(f"initial={self.initial} is not an option index of {self.name!r}")

    @property
    def keys(self) -> list[str]:
        return [str(v) for v in (self.labels if self.values is None else self.values)]


#: The height (pixels) of a row of dropdowns, for Plotly's 13 px default font.
ROW_PX = 34


@dataclass(frozen=True)
class UpdateGroup:
    """Updates that depend on the controls named in ``on``.

    ``table`` maps ``"|".join(value of each control in on)`` to ``{"traces": {index: {attribute:
    value}}, "layout": {attribute: value}}``; attributes in Plotly's dotted form
    (``"error_x.array"``). Every entry should set the same attributes, so that any order of moves
    leaves the figure as that combination's entry says.
    """

    on: Sequence[str]
    table: Mapping[str, Mapping[str, Any]]


@dataclass
class LinkedFigure:
    """A Plotly figure, its controls, and the update groups that the controls drive."""

    figure: Any  # plotly.graph_objects.Figure in its initial state
    controls: Sequence[Control]
    groups: Sequence[UpdateGroup]
    height: int = 600  # pixels
    caption: str = ""  # plain-text summary, for text/plain and for readers without JavaScript
    config: dict = field(default_factory=lambda: {"displaylogo": False, "responsive": True})

    def __post_init__(self):
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names repeat: {names}")
        for group in self.groups:
            unknown = set(group.on) - set(names)
            if unknown:
                raise ValueError(
                    f"group depends on unknown controls {sorted(unknown)}; have {names}"
                )
            initial = self.key(group, {c.name: c.keys[c.initial] for c in self.controls})
            if initial not in group.table:
                raise ValueError(f"group on {list(group.on)} has no entry {initial!r}")
        self._add_controls()

    @staticmethod
    def key(group: UpdateGroup, state: Mapping[str, str]) -> str:
        return "|".join(str(state[name]) for name in group.on)

    def _add_controls(self) -> None:
        sliders = [c for c in self.controls if c.kind == "slider"]
        menus = [c for c in self.controls if c.kind == "dropdown"]
        width = 1.0 / max(1, len(sliders))
        layout_sliders = [
            {
                "name": c.name,
                "active": c.initial,
                "currentvalue": {"prefix": f"{c.title} = ", "font": {"size": 13}},
                "steps": [{"label": label, "method": "skip", "args": []} for label in c.labels],
                "x": i * width,
                "len": 0.9 * width,
                "y": -0.08,
                "yanchor": "top",
                "pad": {"t": 30, "b": 10},
            }
            for i, c in enumerate(sliders)
        ]
        rows = self._menu_places(menus)
        layout_menus = [
            {
                "name": c.name,
                "type": "dropdown",
                "active": c.initial,
                "buttons": [{"label": label, "method": "skip", "args": []} for label in c.labels],
                "x": 0.0,
                "xanchor": "left",
                "y": y,
                "yanchor": "top",
                "showactive": True,
            }
            for c, y in zip(menus, rows, strict=True)
        ]
        labels = [
            {
                "text": f"{c.title}:",
                "x": 0.0,
                "xanchor": "right",
                "xshift": -8,
                "y": y - 0.02,
                "yanchor": "top",
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
            }
            for c, y in zip(menus, rows, strict=True)
        ]
        annotations = list(self.figure.layout.annotations or []) + labels
        self.figure.update_layout(sliders=layout_sliders, updatemenus=layout_menus)
        if labels:
            self.figure.update_layout(annotations=annotations)

    def _menu_places(self, menus: Sequence[Control]) -> list[float]:
        """The ``y`` (paper units) of each dropdown: one row each, from the top of the figure down,
        the menus' left edges on the plot's left edge and their labels in the left margin, so no
        menu, however long its choices, covers another's label. Widens the top margin to hold
        the rows (and the subplot titles below them)."""
        margin = self.figure.layout.margin
        top = 100 if margin.t is None else margin.t
        bottom = 80 if margin.b is None else margin.b
        top = max(top, 12 + ROW_PX * len(menus) + 36) if menus else top
        if menus:
            self.figure.update_layout(margin={"t": top})
        plot_h = max(self.height - top - bottom, 100)
        return [1.0 + (top - 12 - ROW_PX * row) / plot_h for row in range(len(menus))]

    def spec(self) -> dict:
        """What the script receives: the figure, the controls and the update tables (JSON-ready)."""
        plotly = require_plotly()
        figure = json.loads(plotly.io.to_json(self.figure, validate=False))
        return {
            "data": figure["data"],
            "layout": figure["layout"],
            "config": self.config,
            "controls": [
                {"name": c.name, "labels": list(c.labels), "keys": c.keys, "initial": c.initial}
                for c in self.controls
            ],
            "groups": [{"on": list(g.on), "table": g.table} for g in self.groups],
        }

    def html(self) -> str:
        """A div and the script that draws into it; the id is a hash of the content (reproducible)."""
        spec = json.dumps(self.spec(), separators=(",", ":"), allow_nan=False)
        div_id = "gpa-fig-" + hashlib.sha256(spec.encode()).hexdigest()[:12]
        safe = spec.replace("</", "<\\/")  # no "</script>" inside the script
        caption = _escape(self.caption)
        return (
            f'<div class="{CSS_CLASS}" id="{div_id}" style="width:100%;height:{self.height}px">'
            f"</div>\n<noscript>{caption} (this figure needs JavaScript)</noscript>\n"
            f'<script type="text/javascript">\n(function () {{\nvar spec = {safe};\n'
            f'var gd = document.getElementById("{div_id}");\n{SCRIPT}}})();\n</script>\n'
        )

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html(), "text/plain": self.caption or "an interactive figure"}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: The script: draw, then apply the groups' updates whenever a control moves. ``gd.gpaSet(name,
#: label)`` does what moving a control does (for tests); ``data-gpa-ready`` is set once wired.
SCRIPT = r"""
if (!gd) { return; }
if (typeof window.Plotly === "undefined") {
  gd.style.height = "auto";
  gd.textContent = "This interactive figure needs plotly.js, which the built book serves; " +
    "it is not loaded here.";
  console.warn("gpa_lib interactive figure: window.Plotly is missing");
  return;
}
var state = {};
var controls = {};
spec.controls.forEach(function (c) { controls[c.name] = c; state[c.name] = c.keys[c.initial]; });
function apply() {
  var calls = [];
  spec.groups.forEach(function (g) {
    var key = g.on.map(function (name) { return state[name]; }).join("|");
    var entry = g.table[key];
    if (!entry) { console.warn("gpa_lib interactive figure: no entry " + key); return; }
    var traces = Object.keys(entry.traces || {}).map(Number);
    var data = {};
    traces.forEach(function (t, pos) {
      var attrs = entry.traces[t];
      Object.keys(attrs).forEach(function (a) {
        if (!data[a]) { data[a] = traces.map(function () { return undefined; }); }
        data[a][pos] = attrs[a];
      });
    });
    calls.push([data, entry.layout || {}, traces]);
  });
  calls.forEach(function (c) { Plotly.update(gd, c[0], c[1], c[2].length ? c[2] : undefined); });
}
function set(name, label, moveControl) {
  var c = controls[name];
  if (!c) { return false; }
  var i = c.labels.indexOf(String(label));
  if (i < 0) { return false; }
  state[name] = c.keys[i];
  if (moveControl) {  // called from a script: move the slider or dropdown as a reader would
    var move = {};
    (gd.layout.sliders || []).forEach(function (s, j) {
      if (s.name === name) { move["sliders[" + j + "].active"] = i; }
    });
    (gd.layout.updatemenus || []).forEach(function (m, j) {
      if (m.name === name) { move["updatemenus[" + j + "].active"] = i; }
    });
    Plotly.relayout(gd, move);
  }
  apply();
  return true;
}
Plotly.newPlot(gd, spec.data, spec.layout, spec.config).then(function () {
  gd.on("plotly_sliderchange", function (e) { set(e.slider.name, e.step.label); });
  gd.on("plotly_buttonclicked", function (e) { set(e.menu.name, e.button.label); });
  gd.gpaSet = function (name, label) { return set(name, label, true); };
  gd.gpaState = state;
  gd.setAttribute("data-gpa-ready", "1");
});
"""

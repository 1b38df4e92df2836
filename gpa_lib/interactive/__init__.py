"""Figures a reader can play with in the rendered book, without a kernel (Plotly, served offline).

- :mod:`.linked`: :class:`LinkedFigure`, a Plotly figure whose sliders and dropdowns combine
  through precomputed update tables; its HTML expects the plotly.js that the book serves.
- :mod:`.sphinx`: the Sphinx extension that serves that plotly.js from ``_static``.
- :mod:`.tradeoff`: chapter 1's ``topk`` / ``pool`` / ``cell`` trade-off.
- :mod:`.backtest`: the recommendation backtest, by model, slice and metric, with intervals.
- :mod:`.browser`: headless Chromium through the DevTools protocol (the browser test's client).
"""

from gpa_lib.interactive.linked import Control, LinkedFigure, UpdateGroup, plotly_js_path

__all__ = ["Control", "LinkedFigure", "UpdateGroup", "plotly_js_path"]

"""The figure style of the book: one matplotlib rc file for every chapter.

The runner sets ``MATPLOTLIBRC`` to :data:`RC_FILE` in the environment of each notebook it executes,
so the chapters need no style line of their own; a chapter run by hand (papermill, Jupyter, Colab)
gets the same look with :func:`use`. Size and DPI are chosen for the book's 772 px text column.
"""

from __future__ import annotations

from pathlib import Path

#: The rc file (matplotlib's ``matplotlibrc`` format), package data of gpa_lib.
RC_FILE = Path(__file__).resolve().with_name("matplotlibrc")
#: The environment variable matplotlib reads its rc file from at import.
RC_ENV = "MATPLOTLIBRC"


def use() -> None:
    """Apply the book's figure style to the running matplotlib."""
    import matplotlib

    matplotlib.rc_file(RC_FILE)

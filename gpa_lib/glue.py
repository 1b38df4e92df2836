"""One door from computed values to the book: glue every item of a ``{key: value}`` dict.

Library functions that feed a chapter return their glue values as a dict; the chapter glues all of
it in one call, so no chapter writes ``glue(...)`` by hand per number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def glue_all(values: Mapping[str, Any]) -> None:
    """``myst_nb.glue(key, value, display=False)`` for every item (in a notebook only); numpy
    scalars become Python numbers, which the book's number formats need."""
    from myst_nb import glue

    for key, value in values.items():
        glue(key, value.item() if hasattr(value, "item") else value, display=False)

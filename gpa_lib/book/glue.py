"""Read the values a notebook glued (myst-nb stores them as display outputs with a scrapbook key)."""

from __future__ import annotations

from pathlib import Path

import nbformat


def glued_values(path: str | Path) -> dict[str, str]:
    """Glue key -> its ``text/plain`` representation, from an executed ``.ipynb``."""
    nb = nbformat.read(Path(path), as_version=4)
    values: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if "name" in scrapbook:
                prefix = scrapbook.get("mime_prefix", "")
                values[scrapbook["name"]] = output.get("data", {}).get(prefix + "text/plain", "")
    return values

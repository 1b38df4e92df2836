"""One entry point for a user's folder: the interactions format, H&M's layout, or a Parquet save.

:func:`detect_layout` looks at the files (``interactions.csv``, ``transactions_train.csv``,
``manifest.json``); :func:`load_data` reads the folder with the matching loader, or with the one
``layout`` names.
"""

from __future__ import annotations

import os
from pathlib import Path

from gpa_lib.recsys.data.hm import TRANSACTIONS_FILE, load_hm
from gpa_lib.recsys.data.interactions import INTERACTIONS_FILE, load_interactions
from gpa_lib.recsys.data.parquet import load
from gpa_lib.recsys.data.sales import SalesData

LAYOUTS = ("auto", "interactions", "hm", "parquet")
#: The file that marks each layout.
LAYOUT_FILES = {
    "interactions": INTERACTIONS_FILE,
    "hm": TRANSACTIONS_FILE,
    "parquet": "manifest.json",
}


def detect_layout(root: str | os.PathLike) -> str:
    """``"interactions"``, ``"hm"`` or ``"parquet"`` from the files under ``root``; a
    ``ValueError`` naming the folder and the files looked for when none (or several) fit."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data={str(root)!r} is not a folder")
    found = [name for name, file in LAYOUT_FILES.items() if (root / file).is_file()]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(f"{file} ({name})" for name, file in LAYOUT_FILES.items())
    if not found:
        present = sorted(p.name for p in root.iterdir())[:8]
        raise ValueError(
            f"data={str(root)!r} holds none of {listed}; it has {present}. See "
            "data/interactions.md for the interactions format"
        )
    raise ValueError(
        f"data={str(root)!r} holds the files of several layouts {found}; pass layout= (--layout) "
        "to choose one"
    )


def load_data(
    root: str | os.PathLike, layout: str = "auto", *, images: bool = False, progress: bool = True
) -> SalesData:
    """The :class:`SalesData` of the folder ``root`` in ``layout`` (one of :data:`LAYOUTS`).

    ``images`` reads H&M's ``images/`` (the other layouts have no images: an error if asked)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not one of {LAYOUTS}")
    if layout == "auto":
        layout = detect_layout(root)
    if images and layout != "hm":
        raise ValueError(
            f"images=True needs the H&M layout (images/ folder), not layout={layout!r}"
        )
    if layout == "interactions":
        return load_interactions(root)
    if layout == "hm":
        return load_hm(root, images=images, progress=progress)
    return load(root)

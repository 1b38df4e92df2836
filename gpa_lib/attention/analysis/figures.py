"""The selection figure of chapters 1 and 2: query cells on one image, their key blocks on another.

Both panels are drawn on the image in token (pixel) coordinates, so a cell of ``cell x cell`` tokens
and a block of ``pool x pool`` tokens are squares of that many pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle


def show_grid_image(ax: Axes, image: torch.Tensor, *, lines: int | None = None, title: str = ""):
    """``image`` (3, H, W) in [0, 1] in pixel coordinates, with grid lines every ``lines`` pixels."""
    _, H, W = image.shape
    ax.imshow(image.permute(1, 2, 0).numpy(), extent=(0, W, H, 0))
    if lines:
        for y in range(0, H + 1, lines):
            ax.axhline(y, color="white", lw=0.5)
        for x in range(0, W + 1, lines):
            ax.axvline(x, color="white", lw=0.5)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.set_title(title)


def outline_cells(
    ax: Axes, cells: Sequence[tuple[int, int]], cell: int, colours: Sequence[str]
) -> None:
    """Outline query cells given as (row, col) on the cell grid, one colour each."""
    for (cy, cx), colour in zip(cells, colours, strict=True):
        ax.add_patch(Rectangle((cx * cell, cy * cell), cell, cell, fill=False, ec=colour, lw=2.5))


def mark_blocks(
    ax: Axes,
    blocks: Sequence[int],
    pool: int,
    blocks_per_row: int,
    colour: str,
    *,
    filled: bool = True,
    numbered: bool = False,
) -> None:
    """Mark key blocks (indices row-major over the block grid): filled squares, or numbered outlines."""
    for rank, block in enumerate(blocks):
        by, bx = divmod(int(block), blocks_per_row)
        corner = (bx * pool, by * pool)
        if filled:
            ax.add_patch(Rectangle(corner, pool, pool, color=colour, alpha=0.75))
        else:
            ax.add_patch(Rectangle(corner, pool, pool, fill=False, ec=colour, lw=2))
        if numbered:
            ax.text(
                corner[0] + pool / 2, corner[1] + pool / 2, str(rank),
                color="yellow", ha="center", va="center", fontsize=8,
            )  # fmt: skip

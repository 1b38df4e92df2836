"""Layout helpers between image grids, cells and key blocks.

All grids are ``(B, h, H, W, D)`` tensors. A *cell* is a ``cell x cell`` square of query tokens; cells
are numbered row-major over the ``(H / cell, W / cell)`` cell grid, and tokens inside a cell row-major.
A *key block* is a ``pool x pool`` square of key tokens, numbered row-major over the
``(Hk / pool, Wk / pool)`` low-resolution grid; that number is what a selection holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def avg_pool_grid(x: torch.Tensor, pool: int) -> torch.Tensor:
    """Average over ``pool x pool`` blocks: (B, h, H, W, D) -> (B, h, H/pool, W/pool, D).

    ``avg_pool2d`` on the channels-last view of the grid (no copy in, none out): on the CPU about
    ten times faster than one mean over the two strided axes, with no intermediate tensor.
    """
    B, h, H, W, D = x.shape
    pooled = F.avg_pool2d(x.reshape(B * h, H, W, D).permute(0, 3, 1, 2), pool)  # (Bh, D, H/p, W/p)
    return pooled.permute(0, 2, 3, 1).reshape(B, h, H // pool, W // pool, D)


def to_cells(x: torch.Tensor, cell: int) -> torch.Tensor:
    """Cut a grid into cells: (B, h, H, W, D) -> (B, h, K, cell*cell, D), a copy in cell-major order."""
    B, h, H, W, D = x.shape
    rows = x.unflatten(2, (H // cell, cell))  # (B, h, H/c, c, W, D)
    blocks = rows.unflatten(4, (W // cell, cell))  # (B, h, H/c, c, W/c, c, D)
    blocks = blocks.permute(0, 1, 2, 4, 3, 5, 6)  # (B, h, H/c, W/c, c, c, D)
    return blocks.reshape(B, h, (H // cell) * (W // cell), cell * cell, D)  # (B, h, K, c*c, D)


def from_cells(x: torch.Tensor, grid: tuple[int, int], cell: int) -> torch.Tensor:
    """Inverse of :func:`to_cells`: (B, h, K, cell*cell, D) -> (B, h, H, W, D) for ``grid=(H, W)``."""
    B, h, K, _, D = x.shape
    H, W = grid
    blocks = x.reshape(B, h, H // cell, W // cell, cell, cell, D)  # (B, h, H/c, W/c, c, c, D)
    return blocks.permute(0, 1, 2, 4, 3, 5, 6).reshape(B, h, H, W, D)  # (B, h, H, W, D)


def gather_blocks(x: torch.Tensor, selection: torch.Tensor, pool: int) -> torch.Tensor:
    """The tokens of the selected key blocks of every cell.

    x: (B, h, Hk, Wk, D) keys or values; selection: (B, h, K, topk) block indices, row-major over
    (Hk/pool, Wk/pool). Returns (B, h, K, topk*pool*pool, D): for each cell, its selected blocks one
    after the other, tokens row-major inside a block. Indexes the grid in place (no block-major copy).
    """
    B, h, H, W, D = x.shape
    K, topk = selection.shape[2], selection.shape[3]
    blocks_per_row = W // pool
    grid = x.reshape(B * h, H // pool, pool, blocks_per_row, pool, D)  # (B*h, H/p, p, W/p, p, D)
    sel = selection.reshape(B * h, K, topk)  # (B*h, K, k)
    rows = torch.div(sel, blocks_per_row, rounding_mode="floor")  # (B*h, K, k)
    cols = sel - rows * blocks_per_row  # (B*h, K, k)
    bh = torch.arange(B * h, device=x.device).view(B * h, 1, 1)  # (B*h, 1, 1)
    # Advanced indices on dims 0, 1 and 3 are split by a slice, so torch puts the index dims first:
    picked = grid[bh, rows, :, cols]  # (B*h, K, k, p, p, D)
    return picked.reshape(B, h, K, topk * pool * pool, D)  # (B, h, K, k*p*p, D)


def block_tokens(selection: torch.Tensor, k_grid: tuple[int, int], pool: int) -> torch.Tensor:
    """Full-resolution key token indices (row-major over (Hk, Wk)) of selected blocks.

    selection: (..., topk) block indices -> (..., topk*pool*pool), in the order of :func:`gather_blocks`.
    """
    blocks_per_row = k_grid[1] // pool
    rows = torch.div(selection, blocks_per_row, rounding_mode="floor")  # (..., k)
    cols = selection - rows * blocks_per_row  # (..., k)
    offsets = torch.arange(pool, device=selection.device)
    token_rows = rows[..., None, None] * pool + offsets[:, None]  # (..., k, p, 1)
    token_cols = cols[..., None, None] * pool + offsets[None, :]  # (..., k, 1, p)
    tokens = token_rows * k_grid[1] + token_cols  # (..., k, p, p)
    return tokens.flatten(-3)  # (..., k*p*p)


def to_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, h*D, H, W) -> (B, h, H, W, D), contiguous: the layout of :func:`~gpa_lib.attention.gpa_attention`.

    Contiguous because the fused CPU attention kernels need a unit stride along D; a strided view
    silently falls back to a kernel that materialises the full score matrix.
    """
    B, C, H, W = x.shape
    if C % heads:
        raise ValueError(f"channels C={C} must be a multiple of heads={heads}")
    return x.view(B, heads, C // heads, H, W).permute(0, 1, 3, 4, 2).contiguous()  # (B, h, H, W, D)


def from_heads(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_heads`: (B, h, H, W, D) -> (B, h*D, H, W)."""
    B, h, H, W, D = x.shape
    return x.permute(0, 1, 4, 2, 3).reshape(B, h * D, H, W)  # (B, h*D, H, W)

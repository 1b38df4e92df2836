"""Slow loop oracles of GPA for the tests: the definition written one cell and one query at a time."""

from __future__ import annotations

import math

import torch


def slow_gpa(q, k, v, pool, cell, topk, affinity):
    """The four steps of the definition, one query and one key at a time (float64)."""
    B, h, Hq, Wq, D = q.shape
    Hk, Wk = k.shape[2:4]

    def s(a, b):
        if affinity == "dot":
            return float(a @ b) / math.sqrt(D)
        return -float(((a - b) ** 2).sum()) / math.sqrt(D)

    out = torch.zeros(B, h, Hq, Wq, v.shape[-1], dtype=torch.float64)
    selection = torch.zeros(B, h, Hq // cell, Wq // cell, topk, dtype=torch.long)
    blocks = [(by, bx) for by in range(Hk // pool) for bx in range(Wk // pool)]  # row-major
    for b in range(B):
        for hh in range(h):
            kbars = [
                k[b, hh, by * pool : (by + 1) * pool, bx * pool : (bx + 1) * pool].mean((0, 1))
                for by, bx in blocks
            ]
            for cy in range(Hq // cell):
                for cx in range(Wq // cell):
                    mean_p = [0.0] * len(blocks)
                    low = [
                        (y, x)
                        for y in range(cy * cell // pool, (cy + 1) * cell // pool)
                        for x in range(cx * cell // pool, (cx + 1) * cell // pool)
                    ]
                    for y, x in low:
                        q_bar = q[b, hh, y * pool : (y + 1) * pool, x * pool : (x + 1) * pool].mean(
                            (0, 1)
                        )
                        logits = [s(q_bar, kb) for kb in kbars]
                        top = max(logits)
                        weights = [math.exp(z - top) for z in logits]
                        total = sum(weights)
                        for j, w in enumerate(weights):
                            mean_p[j] += w / total / len(low)
                    chosen = sorted(range(len(blocks)), key=lambda j: (-mean_p[j], j))[:topk]
                    selection[b, hh, cy, cx] = torch.tensor(chosen)
                    keys = [
                        (by * pool + dy, bx * pool + dx)
                        for j in chosen
                        for by, bx in [blocks[j]]
                        for dy in range(pool)
                        for dx in range(pool)
                    ]
                    for y in range(cy * cell, (cy + 1) * cell):
                        for x in range(cx * cell, (cx + 1) * cell):
                            logits = torch.tensor(
                                [s(q[b, hh, y, x], k[b, hh, ky, kx]) for ky, kx in keys],
                                dtype=torch.float64,
                            )
                            weights = torch.softmax(logits, 0)
                            values = torch.stack([v[b, hh, ky, kx] for ky, kx in keys])
                            out[b, hh, y, x] = weights @ values
    return out, selection


def selected_attention_loop(q, k, v, selection, pool, cell, affinity):
    """Phase 2 for a given selection, one cell at a time in plain differentiable torch.

    selection: (B, h, Hq/cell, Wq/cell, topk) block indices. Autograd flows to q, k and v, so this is
    the gradient oracle: (B, h, Hq, Wq, Dv).
    """
    B, h, Hq, Wq, D = q.shape
    Wk = k.shape[3]
    rows = []
    for cy in range(Hq // cell):
        row = []
        for cx in range(Wq // cell):
            q_cell = q[:, :, cy * cell : (cy + 1) * cell, cx * cell : (cx + 1) * cell]
            q_cell = q_cell.reshape(B, h, cell * cell, D)  # (B, h, c*c, D)
            tokens = []
            for b in range(B):
                per_head = []
                for hh in range(h):
                    ids = []
                    for j in selection[b, hh, cy, cx].tolist():
                        by, bx = divmod(j, Wk // pool)
                        ids += [
                            (by * pool + dy) * Wk + bx * pool + dx
                            for dy in range(pool)
                            for dx in range(pool)
                        ]
                    per_head.append(ids)
                tokens.append(per_head)
            idx = torch.tensor(tokens)  # (B, h, k*p*p)
            k_sel = torch.stack(
                [
                    torch.stack([k[b, hh].flatten(0, 1)[idx[b, hh]] for hh in range(h)])
                    for b in range(B)
                ]
            )  # (B, h, k*p*p, D)
            v_sel = torch.stack(
                [
                    torch.stack([v[b, hh].flatten(0, 1)[idx[b, hh]] for hh in range(h)])
                    for b in range(B)
                ]
            )  # (B, h, k*p*p, Dv)
            if affinity == "dot":
                logits = q_cell @ k_sel.transpose(-1, -2) / math.sqrt(D)
            else:
                logits = -((q_cell[..., :, None, :] - k_sel[..., None, :, :]) ** 2).sum(
                    -1
                ) / math.sqrt(D)
            out = torch.softmax(logits, -1) @ v_sel  # (B, h, c*c, Dv)
            row.append(out.reshape(B, h, cell, cell, -1))
        rows.append(torch.cat(row, dim=3))
    return torch.cat(rows, dim=2)

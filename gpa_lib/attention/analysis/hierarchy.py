"""The hierarchical phase 1 against exact phase 1: the blocks it finds, the mass it keeps, its cost.

:mod:`~gpa_lib.attention.hierarchical` ranks super-blocks of ``group x group`` key blocks first and
then only the blocks inside the ``candidates`` best. This study measures, per setting (group,
candidates) and per image:

- ``mass_ratio``: the phase-1 objective the selection reaches over the one exact phase 1 reaches: per
  cell, the sum over its chosen blocks of the exact cell-mean probability (the quantity exact phase 1
  maximises), hierarchical over exact, averaged over cells. 1 means nothing was lost;
- ``recall``: the share of exact phase 1's (cell, block) picks that the hierarchy also picked;
- ``identical``: the share of cells whose set of blocks equals exact phase 1's;
- ``random_mass_ratio``: the same ratio for ``topk`` blocks drawn at random per cell, the floor;
- ``score_fraction``: scores per low-resolution query, hierarchical over exact, at the study's grid
  and at the grids of :data:`FRACTION_SIDES` (:func:`~gpa_lib.attention.analysis.complexity.hierarchical_phase1_fraction`).

Intervals are percentile bootstraps over the images (the unit that varies: every image draws its own
shapes, textures and colours).

**Primary comparison, declared before the study first ran (2026-12-05):** at the default
:class:`~gpa_lib.attention.Hierarchy` (group 4, candidates 8), on image features of a 256² grid
(euclid affinity, the authors' default; pool 4, cell 8, topk 8; 64 channels), the mean
``mass_ratio`` is at least :data:`MASS_THRESHOLD`: **supported** when the whole 95% interval lies at
or above it, **contradicted** when it lies below, **not supported** otherwise. Every other setting,
the dot affinity, random features and the timings are exploratory.

:func:`timing_records` times exact and hierarchical phase 1 on this machine's device, in torch and,
on the CPU, the fused CPU kernel's exact phase 1 too.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gpa_lib.measure import median_time, peak_memory
from gpa_lib.stats import Interval, bootstrap_draws, direction_verdict

from ..grid import to_heads
from ..hierarchical import select_key_blocks_hierarchical
from ..problem import Hierarchy, check_inputs
from ..selection import cell_block_scores, select_key_blocks
from ..synthetic import image_features, textured_image
from .complexity import AttentionSizes, hierarchical_phase1_fraction

#: The declared bar of the primary comparison: the hierarchy keeps at least this share of the
#: phase-1 mass that exact phase 1 keeps.
MASS_THRESHOLD = 0.95
#: The primary comparison's setting (the default Hierarchy).
PRIMARY = (Hierarchy().group, Hierarchy().candidates)
#: Grid sides at which the score fraction of every setting is also reported.
FRACTION_SIDES = (1024, 2048)
#: The interval's unit.
IMAGES_BOOTSTRAP = "percentile bootstrap over images"


@dataclass(frozen=True)
class HierarchyStudyConfig:
    """One study: grid and GPA settings, the hierarchy settings, the images and the timings."""

    side: int = 256  # query and key grid side, tokens
    channels: int = 64  # feature channels: one head of D = 64
    pool: int = 4
    cell: int = 8
    topk: int = 8
    affinity: str = "euclid"  # the authors' default
    features: str = "image"  # "image" (textured images through a random conv) or "random" (randn)
    images: int = 8  # independent images (feature draws), the bootstrap's units
    settings: tuple[tuple[int, int], ...] = (
        (2, 4),
        (2, 8),
        (4, 2),
        (4, 4),
        (4, 8),
        (4, 16),
        (8, 2),
        (8, 4),
    )  # (group, candidates)
    seed: int = 0
    n_boot: int = 2000
    timing_sides: tuple[int, ...] = (256, 512, 1024)  # grids at which phase 1 is timed
    timing_heads: int = 1
    timing_repeats: int = 3
    timing_budget_s: float = 20.0  # per timed method and side (fewer repeats past it)
    exact_torch_max_side: int = 1024  # on CUDA, exact phase 1 in torch is timed up to this side
    output_side: int = 128  # grid of the output check against dense attention (exploratory)
    output_settings: tuple[tuple[int, int], ...] = ((4, 8), (4, 16))
    # grids at which one training step is timed, with exact and with hierarchical phase 1
    train_sides: tuple[int, ...] = (512, 1024)
    train_heads: int = 1

    def __post_init__(self) -> None:
        if self.features not in ("image", "random"):
            raise ValueError(f"features={self.features!r} must be 'image' or 'random'")
        if self.images < 2:
            raise ValueError(f"images={self.images} must be at least 2 (the interval's units)")
        for group, candidates in self.settings:
            Hierarchy(group, candidates)  # raises on a bad setting, naming it


def study_features(cfg: HierarchyStudyConfig, index: int) -> torch.Tensor:
    """Features of image ``index``: (1, 1, side, side, channels), float32, deterministic."""
    seed = cfg.seed * 1000 + index
    if cfg.features == "random":
        g = torch.Generator().manual_seed(seed)
        return torch.randn(1, 1, cfg.side, cfg.side, cfg.channels, generator=g)
    image = textured_image(cfg.side, seed=seed)
    return to_heads(image_features(image, cfg.channels, seed=seed), 1)  # (1, 1, H, W, C)


def agreement(
    x: torch.Tensor,
    cfg: HierarchyStudyConfig,
    hierarchy: Hierarchy,
    *,
    exact_means: torch.Tensor | None = None,
    exact: torch.Tensor | None = None,
) -> dict[str, float]:
    """Mass ratio, recall and identical cells of the hierarchical selection of self-attention on
    ``x`` (B, h, H, W, D) against exact phase 1; ``exact_means`` (B, h, K, Nb) and ``exact``
    (B, h, K, topk) may be passed in when several settings share them."""
    settings = dict(pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity)
    if exact_means is None:
        exact_means = cell_block_scores(x, x, pool=cfg.pool, cell=cfg.cell, affinity=cfg.affinity)
        exact_means = exact_means.flatten(2, 3)  # (B, h, K, Nb)
    if exact is None:
        exact = select_key_blocks(x, x, **settings).flatten(2, 3)  # (B, h, K, k)
    picked = select_key_blocks_hierarchical(x, x, hierarchy=hierarchy, **settings).flatten(2, 3)
    exact_mass = exact_means.gather(-1, exact).sum(-1)  # (B, h, K)
    ratio = exact_means.gather(-1, picked).sum(-1) / exact_mass  # (B, h, K)
    found = (picked[..., :, None] == exact[..., None, :]).any(-1)  # (B, h, K, k)
    return {
        "mass_ratio": float(ratio.mean()),
        "worst_cell_ratio": float(ratio.min()),
        "recall": float(found.float().mean()),
        "identical": float(found.all(-1).float().mean()),
    }


def random_mass_ratio(
    exact_means: torch.Tensor, exact: torch.Tensor, topk: int, seed: int
) -> float:
    """The mass ratio of ``topk`` distinct blocks drawn uniformly per cell (the floor)."""
    g = torch.Generator().manual_seed(seed)
    draws = torch.rand(exact_means.shape, generator=g).topk(topk, dim=-1).indices  # (B, h, K, k)
    ratio = exact_means.gather(-1, draws).sum(-1) / exact_means.gather(-1, exact).sum(-1)
    return float(ratio.mean())


def agreement_records(cfg: HierarchyStudyConfig, *, progress: bool = True) -> list[dict[str, Any]]:
    """One record per (image, setting), plus one ``"random"`` control record per image."""
    records = []
    runs = [(i, s) for i in range(cfg.images) for s in cfg.settings]
    bar = tqdm(total=len(runs), desc="hierarchy vs exact phase 1", disable=not progress)
    for index in range(cfg.images):
        x = study_features(cfg, index)
        exact_means = cell_block_scores(
            x, x, pool=cfg.pool, cell=cfg.cell, affinity=cfg.affinity
        ).flatten(2, 3)  # (1, 1, K, Nb)
        exact = select_key_blocks(
            x, x, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity
        ).flatten(2, 3)  # (1, 1, K, k)
        records.append(
            {
                "image": index,
                "setting": "random",
                "mass_ratio": random_mass_ratio(exact_means, exact, cfg.topk, cfg.seed + index),
            }
        )
        for group, candidates in cfg.settings:
            found = agreement(
                x, cfg, Hierarchy(group, candidates), exact_means=exact_means, exact=exact
            )
            records.append(
                {
                    "image": index,
                    "setting": f"{group}x{candidates}",
                    "group": group,
                    "candidates": candidates,
                    **found,
                }
            )
            bar.update()
    bar.close()
    return records


def output_records(cfg: HierarchyStudyConfig, *, progress: bool = True) -> list[dict[str, Any]]:
    """What the selection does to the layer's output, per image at ``cfg.output_side``² (exploratory):
    the full-resolution softmax mass each query keeps (mean over queries) and the output's relative
    error against dense attention, for exact phase 1 and each of ``cfg.output_settings``."""
    from dataclasses import replace

    from .diagnostics import gpa_quality

    small = replace(cfg, side=cfg.output_side)
    runs = [("exact", None)] + [(f"{g}x{m}", Hierarchy(g, m)) for g, m in cfg.output_settings]
    records = []
    for index in tqdm(range(cfg.images), desc="output against dense", disable=not progress):
        x = study_features(small, index)  # (1, 1, s, s, C): q = k = v
        for label, hierarchy in runs:
            quality = gpa_quality(
                x, x, x, pool=cfg.pool, cell=cfg.cell, topk=cfg.topk,
                affinity=cfg.affinity, hierarchy=hierarchy,
            )  # fmt: skip
            records.append(
                {
                    "image": index,
                    "setting": label,
                    "kept_mass": quality.mass_mean,
                    "error_total": quality.error_total,
                }
            )
    return records


def output_summary(
    records: list[dict[str, Any]], cfg: HierarchyStudyConfig
) -> list[dict[str, Any]]:
    """Per setting of :func:`output_records`: kept mass and output error, mean and interval over images."""
    rows = []
    for setting in dict.fromkeys(r["setting"] for r in records):
        mine = [r for r in records if r["setting"] == setting]
        row: dict[str, Any] = {"setting": setting}
        for metric in ("kept_mass", "error_total"):
            values = np.array([r[metric] for r in mine], dtype=np.float64)
            row[metric] = _interval(values, cfg.n_boot, cfg.seed).to_dict()
        rows.append(row)
    return rows


def _interval(values: np.ndarray, n_boot: int, seed: int) -> Interval:
    rng = np.random.default_rng(seed)
    draws = bootstrap_draws(len(values), n_boot, rng)
    return Interval.from_replicates(
        float(values.mean()),
        np.array([values[d].mean() for d in draws]),
        method=IMAGES_BOOTSTRAP,
        n=len(values),
    )


def summarise(records: list[dict[str, Any]], cfg: HierarchyStudyConfig) -> list[dict[str, Any]]:
    """Per setting: each metric's mean and 95% interval over images, and the score fractions."""
    rows = []
    sizes = {
        side: AttentionSizes(q_grid=(side, side), k_grid=(side, side), pool=cfg.pool, cell=cfg.cell)
        for side in (cfg.side, *FRACTION_SIDES)
    }
    for setting in ("random", *(f"{g}x{m}" for g, m in cfg.settings)):
        mine = [r for r in records if r["setting"] == setting]
        row: dict[str, Any] = {"setting": setting}
        metrics = (
            ("mass_ratio",)
            if setting == "random"
            else ("mass_ratio", "worst_cell_ratio", "recall", "identical")
        )
        for metric in metrics:
            values = np.array([r[metric] for r in mine], dtype=np.float64)
            row[metric] = _interval(values, cfg.n_boot, cfg.seed).to_dict()
        if setting != "random":
            group, candidates = mine[0]["group"], mine[0]["candidates"]
            row.update(group=group, candidates=candidates)
            row["score_fraction"] = {
                str(side): _fraction(s, group, candidates) for side, s in sizes.items()
            }
        rows.append(row)
    return rows


def _fraction(sizes: AttentionSizes, group: int, candidates: int) -> float | None:
    """The score fraction, or None where the setting does not fit the grid."""
    hb, wb = sizes.block_grid
    if hb % group or wb % group or candidates > (hb // group) * (wb // group):
        return None
    return hierarchical_phase1_fraction(sizes, group, candidates)


def primary_verdict(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """The declared comparison's verdict: the default setting's mass ratio against the threshold."""
    row = next(r for r in summary if r["setting"] == f"{PRIMARY[0]}x{PRIMARY[1]}")
    mass = Interval.from_dict(row["mass_ratio"])
    return {
        "setting": row["setting"],
        "threshold": MASS_THRESHOLD,
        "mass_ratio": mass.to_dict(),
        "verdict": direction_verdict(mass.lo - MASS_THRESHOLD, mass.hi - MASS_THRESHOLD),
    }


def timing_records(
    cfg: HierarchyStudyConfig, device: str | torch.device = "cpu", *, progress: bool = True
) -> list[dict[str, Any]]:
    """Median seconds of exact and hierarchical (default setting) phase 1 per grid side on ``device``
    (random features, ``cfg.timing_heads`` heads of ``cfg.channels``)."""
    device = torch.device(device)
    hierarchy = Hierarchy(*PRIMARY)
    records = []
    for side in tqdm(cfg.timing_sides, desc="phase-1 timing", disable=not progress):
        g = torch.Generator().manual_seed(cfg.seed + side)
        x = torch.randn(1, cfg.timing_heads, side, side, cfg.channels, generator=g).to(device)
        settings = dict(pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity)
        calls = _phase1_calls(x, settings, hierarchy)
        if device.type == "cuda" and side > cfg.exact_torch_max_side and len(calls) > 2:
            del calls["exact (torch)"]  # minutes a call there; the fused kernel is the exact one
        for method, fn in calls.items():
            timing = median_time(
                fn,
                device=device,
                warmup=1,
                repeats=cfg.timing_repeats,
                budget_s=cfg.timing_budget_s,
                max_call_s=cfg.timing_budget_s,
            )
            records.append(
                {
                    "side": side,
                    "method": method,
                    "median_s": timing["median_s"],
                    "min_s": timing["min_s"],
                    "repeats": timing["repeats"],
                    "timer": timing["timer"],
                }
            )
    return records


def train_step_records(
    cfg: HierarchyStudyConfig, device: str | torch.device = "cpu", *, progress: bool = True
) -> list[dict[str, Any]]:
    """One GPA training step (forward, ``out.square().mean()``, backward) through ``backend=None``
    with exact and with hierarchical (default setting) phase 1, per side of ``cfg.train_sides``:
    median seconds and peak extra memory on ``device``, and the backend chosen. Inputs: random,
    ``cfg.train_heads`` heads of ``cfg.channels``, bfloat16 on CUDA and float32 elsewhere."""
    from ..functional import auto_backend

    device = torch.device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    settings = dict(pool=cfg.pool, cell=cfg.cell, topk=cfg.topk, affinity=cfg.affinity)
    records = []
    for side in tqdm(cfg.train_sides, desc="training steps", disable=not progress):
        g = torch.Generator().manual_seed(cfg.seed + side)
        shape = (1, cfg.train_heads, side, side, cfg.channels)
        q, k, v = (
            torch.randn(shape, generator=g).to(device, dtype).requires_grad_() for _ in range(3)
        )
        for label, hierarchy in (("exact", None), ("hierarchical", Hierarchy(*PRIMARY))):
            step = _training_step(q, k, v, settings, hierarchy)
            try:
                timing = median_time(
                    step, device=device, warmup=1, repeats=cfg.timing_repeats,
                    budget_s=cfg.timing_budget_s, max_call_s=cfg.timing_budget_s,
                )  # fmt: skip
                _, peak = peak_memory(step, device)
            except (RuntimeError, MemoryError) as err:  # out of memory, a backend that failed
                records.append({"side": side, "phase1": label, "error": str(err).splitlines()[0]})
                continue
            records.append(
                {
                    "side": side,
                    "phase1": label,
                    "backend": auto_backend(q, k, v, **settings),
                    "median_s": timing["median_s"],
                    "repeats": timing["repeats"],
                    "peak_extra_bytes": int(peak),
                    "dtype": str(dtype).removeprefix("torch."),
                }
            )
    return records


def _training_step(q, k, v, settings: dict[str, Any], hierarchy: Hierarchy | None):
    """One forward and backward of GPA on q, k, v (gradients cleared after)."""
    from ..functional import gpa_attention

    def step():
        out = gpa_attention(q, k, v, hierarchy=hierarchy, **settings)
        out.float().square().mean().backward()
        q.grad = k.grad = v.grad = None

    return step


def _phase1_calls(x: torch.Tensor, settings: dict[str, Any], hierarchy: Hierarchy):
    """The timed calls on ``x``: the device's fused exact phase 1 where there is one, exact and
    hierarchical phase 1 in torch."""
    calls = {
        "exact (torch)": lambda: select_key_blocks(x, x, **settings),
        "hierarchical (torch)": lambda: select_key_blocks_hierarchical(
            x, x, hierarchy=hierarchy, **settings
        ),
    }
    exact_kernel = _exact_kernel_call(x, settings)
    return calls if exact_kernel is None else {"exact (fused kernel)": exact_kernel, **calls}


def _exact_kernel_call(x: torch.Tensor, settings: dict[str, Any]):
    """The fused exact phase 1 of the device's kernel backend (CPU kernel or CUDA kernel), or None."""
    problem = check_inputs(x, x, x, **settings)
    if x.device.type == "cpu":
        from ..kernel.cpu.build import cpu_kernel_reason
        from ..kernel.cpu.ops import cpu_select_key_blocks

        if x.dtype != torch.float32 or cpu_kernel_reason() is not None:
            return None
        return lambda: cpu_select_key_blocks(x, x, problem)
    if x.device.type == "cuda":
        from ..kernel.cuda.phase1 import fused_phase1_reason, select_key_blocks_fused

        if fused_phase1_reason(problem) is not None:
            return None
        return lambda: select_key_blocks_fused(x, x, problem)
    return None


def run_hierarchy_study(
    cfg: HierarchyStudyConfig, *, device: str = "cpu", timing: bool = True, progress: bool = True
) -> dict[str, Any]:
    """The whole study as a JSON-ready payload: config, records, summary, verdict, timings."""
    started = time.perf_counter()
    records = agreement_records(cfg, progress=progress)
    summary = summarise(records, cfg)
    payload = {
        "config": asdict(cfg),
        "primary": {
            "setting": list(PRIMARY),
            "threshold": MASS_THRESHOLD,
            "declared": "2026-12-05, before the study first ran",
        },
        "records": records,
        "summary": summary,
        "verdict": primary_verdict(summary),
        "agreement_s": round(time.perf_counter() - started, 3),
    }
    if cfg.output_settings:
        outputs = output_records(cfg, progress=progress)
        payload["output"] = {"records": outputs, "summary": output_summary(outputs, cfg)}
    if timing:
        payload["timing"] = timing_records(cfg, device, progress=progress)
    if timing and cfg.train_sides:
        payload["training"] = train_step_records(cfg, device, progress=progress)
    return payload


def summary_table(payload: dict[str, Any]):
    """The summary as a DataFrame of text: one row per setting, means with intervals in words, "—"
    where a value does not apply."""
    import pandas as pd

    rows = []
    side = str(payload["config"]["side"])
    for row in payload["summary"]:
        mass = Interval.from_dict(row["mass_ratio"])
        entry = {
            "setting (group x candidates)": row["setting"],
            "phase-1 mass kept (of exact)": mass.text(3, signed=False),
        }
        if row["setting"] != "random":
            fractions = row["score_fraction"]
            entry["blocks found (recall)"] = f"{row['recall']['estimate']:.3f}"
            entry["cells identical"] = f"{row['identical']['estimate']:.3f}"
            for s in (side, *(str(f) for f in FRACTION_SIDES)):
                value = fractions.get(s)
                entry[f"scores at {s}² (of exact)"] = "—" if value is None else f"{value:.4f}"
        rows.append(entry)
    return pd.DataFrame(rows).fillna("—")  # the random control has no recall and no cost


def timing_table(payload: dict[str, Any]):
    """Seconds per phase-1 call by side and method (one row per side)."""
    import pandas as pd

    frame = pd.DataFrame(payload.get("timing", []))
    if frame.empty:
        return frame
    return frame.pivot(index="side", columns="method", values="median_s")


def speedup(payload: dict[str, Any], side: int, baseline: str = "exact (torch)") -> float | None:
    """Exact over hierarchical time at ``side`` (None where not timed)."""
    table = timing_table(payload)
    if table.empty or side not in table.index or baseline not in table.columns:
        return None
    value = table.loc[side, baseline] / table.loc[side, "hierarchical (torch)"]
    return None if not math.isfinite(value) else float(value)


# ------------------------------------------------------------------------- chapter 2's section

#: The stored results the chapter reads: the primary study, then the exploratory variants.
RESULT_NAMES = {
    "primary": "hierarchy_phase1",
    "dot": "hierarchy_phase1_dot",
    "random": "hierarchy_phase1_random",
}
#: Library code the stored numbers depend on (for the figures' provenance footer).
HIERARCHY_CODE = (
    "gpa_lib/attention/hierarchical.py",
    "gpa_lib/attention/selection.py",
    "gpa_lib/attention/analysis/hierarchy.py",
)


def stored_hierarchy_results(results_dir=None) -> dict[str, dict[str, Any] | None]:
    """The committed results of :data:`RESULT_NAMES` (``None`` for one not stored)."""
    from gpa_lib.results import read_result

    found: dict[str, dict[str, Any] | None] = {}
    for key, name in RESULT_NAMES.items():
        try:
            found[key] = read_result(name, results_dir)
        except FileNotFoundError:
            found[key] = None
    return found


def _interval_text(record: dict[str, Any]) -> str:
    """``"0.496 (0.47 to 0.52)"``: a stored interval in the chapter's words."""
    i = Interval.from_dict(record)
    return f"{i.estimate:.3f} ({i.lo:.3f} to {i.hi:.3f})"


def _row(payload: dict[str, Any], setting: str) -> dict[str, Any]:
    return next(r for r in payload["summary"] if r["setting"] == setting)


def clearing_sentence(payload: dict[str, Any]) -> str:
    """Which settings keep the threshold with their whole interval, and at what share of the scores
    at 1024² (exploratory: read after the primary comparison)."""
    clear = [
        r
        for r in payload["summary"]
        if r["setting"] != "random" and r["mass_ratio"]["lo"] >= MASS_THRESHOLD
    ]
    if not clear:
        return (
            f"No setting tried keeps {MASS_THRESHOLD:.0%} of the mass with its whole interval; "
            "the largest candidate lists come closest."
        )
    parts = [
        f"{r['group']}×{r['candidates']} ({Interval.from_dict(r['mass_ratio']).text(3, False)}, "
        f"{r['score_fraction']['1024']:.1%} of the scores at 1024²)"
        for r in clear
    ]
    return (
        f"The settings whose whole interval lies at or above {MASS_THRESHOLD:.0%} (exploratory): "
        + "; ".join(parts)
        + "."
    )


def hierarchy_figure(payload: dict[str, Any], figsize=(7.6, 3.2)):
    """(a) Mass kept against the share of exact phase 1's scores at 1024², one point per setting
    with its interval over images; (b) phase-1 seconds per call against the grid side, log-log."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    from gpa_lib.stamp import stamp_results

    fig, (ax, bx) = plt.subplots(1, 2, figsize=figsize)
    for row in payload["summary"]:
        if row["setting"] == "random":
            continue
        mass = row["mass_ratio"]
        x = row["score_fraction"]["1024"]
        primary = row["setting"] == f"{PRIMARY[0]}x{PRIMARY[1]}"
        ax.errorbar(
            x, mass["estimate"], yerr=[[mass["estimate"] - mass["lo"]], [mass["hi"] - mass["estimate"]]],
            fmt="o", color="C3" if primary else "C0", capsize=3,
        )  # fmt: skip
        ax.annotate(row["setting"].replace("x", "×"), (x, mass["estimate"]), fontsize=7,
                    xytext=(4, -9), textcoords="offset points")  # fmt: skip
    ax.axhline(MASS_THRESHOLD, color="0.4", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([0.02, 0.05, 0.1, 0.2]))
    ax.xaxis.set_major_formatter(FixedFormatter(["2%", "5%", "10%", "20%"]))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("phase-1 scores at 1024², share of exact")
    ax.set_ylabel("phase-1 mass kept, share of exact")
    ax.set_title("(a) quality against cost", fontsize=9)
    times = timing_table(payload)
    for method in times.columns:
        bx.plot(times.index, times[method], marker="o", label=method)
    bx.set_xscale("log", base=2)
    bx.set_xticks(list(times.index), [str(side) for side in times.index])
    bx.xaxis.set_minor_formatter(NullFormatter())
    bx.set_yscale("log")
    bx.set_xlabel("grid side (tokens)")
    bx.set_ylabel("phase 1, s per call")
    bx.set_title("(b) time on this study's machine", fontsize=9)
    bx.legend(fontsize=7)
    fig.tight_layout()
    return stamp_results(fig, {RESULT_NAMES["primary"]: payload}, HIERARCHY_CODE)


def _output_values(output: dict[str, Any] | None) -> dict[str, Any]:
    """Glue ``ch2_hier_out_*``: kept mass and output error of exact phase 1 and the default."""
    if not output:
        return {}
    rows = {r["setting"]: r for r in output["summary"]}
    default = rows.get(f"{PRIMARY[0]}x{PRIMARY[1]}")
    if "exact" not in rows or default is None:
        return {}
    values = {}
    for label, row in (("exact", rows["exact"]), ("hier", default)):
        values[f"ch2_hier_out_mass_{label}"] = row["kept_mass"]["estimate"]
        values[f"ch2_hier_out_err_{label}"] = row["error_total"]["estimate"]
        values[f"ch2_hier_out_err_{label}_text"] = Interval.from_dict(row["error_total"]).text(
            3, False
        )
    return values


def _training_values(training: list[dict[str, Any]]) -> dict[str, Any]:
    """Glue ``ch2_hier_train_*`` from the largest side where both training steps ran."""
    ran = {(r["side"], r["phase1"]): r for r in training if "median_s" in r}
    sides = [
        s
        for s in {r["side"] for r in training}
        if (s, "exact") in ran and (s, "hierarchical") in ran
    ]
    if not sides:
        return {}
    side = max(sides)
    exact, hier = ran[(side, "exact")], ran[(side, "hierarchical")]
    return {
        "ch2_hier_train_side": side,
        "ch2_hier_train_exact_s": exact["median_s"],
        "ch2_hier_train_hier_s": hier["median_s"],
        "ch2_hier_train_speedup": exact["median_s"] / hier["median_s"],
        "ch2_hier_train_backend": hier["backend"],
        "ch2_hier_train_exact_calls": exact["repeats"],
        "ch2_hier_train_hier_calls": hier["repeats"],
    }


def _machine_words(provenance: dict[str, Any]) -> str:
    """``"AMD EPYC, 2 cores"`` (or the GPU) from a provenance block."""
    from gpa_lib.stamp import machine_name

    device = provenance.get("device") or {}
    cores = None if device.get("gpu") else device.get("cpu_count")
    return (machine_name(provenance) or "an unnamed machine") + (
        f", {cores} cores" if cores else ""
    )


def chapter_study(results_dir=None):
    """Chapter 2's section on the hierarchical phase 1 from the stored results: glue ``ch2_hier_*``,
    the summary table and :func:`hierarchy_figure`; without the primary result, a line saying so."""
    from .study import Study

    stored = stored_hierarchy_results(results_dir)
    payload = stored["primary"]
    if payload is None:
        return Study(
            values={},
            table="no stored hierarchy_phase1.json: run python -m gpa_lib.bench hierarchy",
        )
    cfg, verdict = payload["config"], payload["verdict"]
    setting = f"{PRIMARY[0]}x{PRIMARY[1]}"
    row = _row(payload, setting)
    mass = verdict["mass_ratio"]
    provenance = payload["provenance"]
    values: dict[str, Any] = {
        "ch2_hier_verdict": verdict["verdict"],
        "ch2_hier_group": PRIMARY[0],
        "ch2_hier_candidates": PRIMARY[1],
        "ch2_hier_threshold_pct": 100 * MASS_THRESHOLD,
        "ch2_hier_mass": mass["estimate"],
        "ch2_hier_mass_lo": mass["lo"],
        "ch2_hier_mass_hi": mass["hi"],
        "ch2_hier_images": cfg["images"],
        "ch2_hier_side": cfg["side"],
        "ch2_hier_recall_text": _interval_text(row["recall"]),
        "ch2_hier_identical_text": _interval_text(row["identical"]),
        "ch2_hier_worst_cell_text": _interval_text(row["worst_cell_ratio"]),
        "ch2_hier_fraction_1024_pct": 100 * row["score_fraction"]["1024"],
        "ch2_hier_fraction_2048_pct": 100 * row["score_fraction"]["2048"],
        "ch2_hier_control_mass_text": _interval_text(_row(payload, "random")["mass_ratio"]),
        "ch2_hier_clearing": clearing_sentence(payload),
        "ch2_hier_machine": _machine_words(provenance),
        "ch2_hier_date": str(provenance.get("date", ""))[:10],
    }
    for key, label in (("dot", "dot"), ("random", "noise")):
        other = stored[key]
        if other is not None:
            values[f"ch2_hier_{label}_mass_text"] = _interval_text(
                _row(other, setting)["mass_ratio"]
            )
            values[f"ch2_hier_{label}_control_text"] = _interval_text(
                _row(other, "random")["mass_ratio"]
            )
    times = timing_table(payload)
    if not times.empty:
        side = int(times.index.max())
        values["ch2_hier_time_side"] = side
        calls = {(r["side"], r["method"]): r["repeats"] for r in payload["timing"]}
        values["ch2_hier_time_calls"] = min(calls[(side, m)] for m in times.columns)
        values["ch2_hier_exact_s"] = float(times.loc[side, "exact (torch)"])
        values["ch2_hier_hier_s"] = float(times.loc[side, "hierarchical (torch)"])
        values["ch2_hier_speedup"] = speedup(payload, side)
        fraction = row["score_fraction"].get(str(side))
        values["ch2_hier_count_speedup"] = None if fraction is None else 1 / fraction
        if "exact (fused kernel)" in times.columns:
            values["ch2_hier_kernel_s"] = float(times.loc[side, "exact (fused kernel)"])
            values["ch2_hier_kernel_speedup"] = speedup(payload, side, "exact (fused kernel)")
    values.update(_training_values(payload.get("training", [])))
    values.update(_output_values(payload.get("output")))
    values["ch2_hier_out_side"] = cfg.get("output_side")
    figure = hierarchy_figure(payload)
    values["ch2_fig_hierarchy"] = figure
    table = summary_table(payload).style.hide(axis="index")
    return Study(
        values=values, table=table, figure=figure, data={"hierarchy": summary_table(payload)}
    )

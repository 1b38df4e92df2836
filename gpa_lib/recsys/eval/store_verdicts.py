"""The papers' claims judged on the best evidence committed: the multi-store study when it is there,
the single-store results otherwise; the "In short" of chapter 5, its forest plot of per-store gaps,
and the table of tuning choices on the edge of their grid.

The multi-store study (``python -m gpa_lib.bench recsys --study backtest --stores 8 ... --name
claims_stores``, merged by :func:`gpa_lib.recsys.eval.shards.merge`) writes
``data/results/claims_stores.json``: for every claim it measures, the hierarchical interval over
stores, cutoffs and customers, p from that bootstrap, Holm's adjustment over the claims of the paper
it measures, the verdict of :func:`gpa_lib.recsys.eval.claims.judge`, and the sign-flip p over the
per-store gaps. Where it measured a claim, that verdict is the claim's verdict here, as the study
wrote it; the committed single-store runs (:mod:`gpa_lib.recsys.eval.verdicts`) are shown beside it
as replications and not judged again, since store seed 0 of the study is the store they ran on (at
another size). A claim the study does not measure (the style tracking, one store) keeps its
provisional single-store verdict, and says so. Without the file every claim does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.claims import CLAIMS, Claim, Evidence, Judgement
from gpa_lib.recsys.eval.protocol import grid_edges
from gpa_lib.recsys.eval.report import MODEL_LABELS, RECSYS_CODE, SLICE_LABELS
from gpa_lib.recsys.eval.verdicts import committed_verdicts, p_text
from gpa_lib.stamp import stamp_results
from gpa_lib.stats import Interval

#: The committed multi-store study's file name (under ``data/results``).
STORE_STUDY = "claims_stores"
#: How a metric is named on an axis.
METRIC_LABELS = {"auc": "AUC", "map@12": "MAP@12", "cosine": "cosine to the true style"}


@dataclass(frozen=True)
class ClaimVerdict:
    """One claim on the best evidence committed."""

    judgement: Judgement  # the verdict: the store study's where it measured the claim
    n_stores: int  # stores behind the interval (1: the committed single-store results)
    store_gaps: tuple[tuple[str, float], ...]  # (store, gap a - b) per store of the study
    p_sign_flip: float  # sign-flip p over the per-store gaps (NaN with one store)
    single_store: tuple[tuple[str, Interval], ...]  # the committed single-store runs

    @property
    def from_stores(self) -> bool:
        return self.n_stores > 1 or bool(self.store_gaps)


def load_store_study(results_dir: Any = None) -> dict[str, Any] | None:
    """The committed multi-store study (``claims_stores.json``), or ``None`` before it is."""
    from gpa_lib.results import read_result, result_exists

    if not result_exists(STORE_STUDY, results_dir):
        return None
    return read_result(STORE_STUDY, results_dir)


def _store_gaps(stores: Mapping[str, Any], claim: Claim) -> tuple[tuple[str, float], ...]:
    for row in stores.get("comparisons", ()):
        if row.get("primary") == claim.name:
            return tuple(
                (f"store {seed}", float("nan") if g is None else float(g))
                for seed, g in zip(stores["stores"], row["store_gaps"], strict=True)
            )
    return ()


def _single_store_runs(j: Judgement) -> tuple[tuple[str, Interval], ...]:
    """The committed single-store evidence of a judgement: its own interval, then its replications."""
    study = j.claim.study.replace("_", " ")
    return ((f"{study} (store seed 0)", j.evidence.interval), *j.evidence.replications)


def claim_verdicts(
    paper: str,
    stores: Mapping[str, Any] | None,
    committed: Sequence[Judgement] | None = None,
) -> list[ClaimVerdict]:
    """Every claim of the family ``paper``: the multi-store verdict (``stores``, the payload of
    :func:`load_store_study`) where the study measured it, else the committed single-store one
    (``committed``: :func:`~gpa_lib.recsys.eval.verdicts.committed_verdicts`, read when ``None``)."""
    committed = committed_verdicts(paper) if committed is None else list(committed)
    by_name = {j.claim.name: j for j in committed}
    measured = {row["claim"]: row for row in (stores or {}).get("claims", ())}
    out = []
    for claim in CLAIMS[paper]:
        single = by_name.get(claim.name)
        runs = _single_store_runs(single) if single is not None else ()
        row = measured.get(claim.name)
        if row is None:
            if single is None:
                raise ValueError(f"claim {claim.name!r} has neither store nor committed evidence")
            out.append(ClaimVerdict(single, 1, (), math.nan, runs))
            continue
        interval = Interval.from_dict(row["interval"])
        evidence = Evidence(interval, float(row["p"]), row["p_method"], runs)
        judged = Judgement(claim, evidence, float(row["p_holm"]), row["verdict"], row["reason"])
        p_flip = math.nan if row.get("p_sign_flip") is None else float(row["p_sign_flip"])
        n_stores = len(stores["stores"])
        out.append(ClaimVerdict(judged, n_stores, _store_gaps(stores, claim), p_flip, runs))
    return out


def _gap_label(c: Claim) -> str:
    a, b = MODEL_LABELS.get(c.a, c.a), MODEL_LABELS.get(c.b, c.b)
    return f"{a} − {b}, {METRIC_LABELS.get(c.metric, c.metric)} ({SLICE_LABELS[c.slice]})"


def claims_table(verdicts: Sequence[ClaimVerdict], digits: int = 3) -> pd.DataFrame:
    """One row per claim: verdict, evidence, the gap with its 95% interval, p (Holm), the sign-flip
    p over stores, and the committed single-store runs of the same gap."""
    rows = []
    for v in verdicts:
        j = v.judgement
        evidence = (
            f"{v.n_stores} stores" if v.from_stores else "one store (provisional)"
        ) + f"; {j.evidence.p_method}"
        rows.append(
            {
                "claim": j.claim.text,
                "verdict": j.verdict,
                "evidence": evidence,
                "gap (95% interval)": f"{_gap_label(j.claim)}: {j.evidence.interval.text(digits)}",
                "p (Holm)": f"{p_text(j.evidence.p_value)} ({p_text(j.p_holm)})",
                "sign-flip p over stores": "n/a"
                if math.isnan(v.p_sign_flip)
                else p_text(v.p_sign_flip),
                "single-store runs": "; ".join(f"{r}: {i.text(digits)}" for r, i in v.single_store)
                or "none",
            }
        )
    return pd.DataFrame(rows).set_index("claim")


def _positive(v: ClaimVerdict) -> int:
    gaps = [g for _, g in v.store_gaps] or [v.judgement.evidence.interval.estimate]
    return int(sum(g > 0 for g in gaps if math.isfinite(g)))


def short_glue(
    prefix: str, verdicts: Sequence[ClaimVerdict], stores: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The numbers and words of chapter 5's "In short": per claim ``{prefix}_{claim}_verdict``,
    ``_gap``, ``_lo``, ``_hi``, ``_p_holm`` (and ``_p_holm_text``: "<0.0001" below that), ``_n_stores`` and ``_n_positive`` (stores whose gap is
    positive; with one store, whether the estimate is), and ``{prefix}_evidence``: which study
    the verdicts rest on, in words."""
    out: dict[str, Any] = {}
    for v in verdicts:
        key, i = f"{prefix}_{v.judgement.claim.name}", v.judgement.evidence.interval
        out[f"{key}_verdict"] = v.judgement.verdict
        out[f"{key}_gap"], out[f"{key}_lo"], out[f"{key}_hi"] = i.estimate, i.lo, i.hi
        out[f"{key}_p_holm"], out[f"{key}_p_holm_text"] = (
            v.judgement.p_holm,
            p_text(v.judgement.p_holm),
        )
        out[f"{key}_n_stores"], out[f"{key}_n_positive"] = v.n_stores, _positive(v)
    if stores is None:
        out[f"{prefix}_evidence"] = (
            "the multi-store study is not committed yet (data/results/claims_stores.json), so "
            "every verdict below rests on one simulated store and is provisional"
        )
    else:
        customers = stores.get("spec", {}).get("stores", [{}])[0].get("n_customers")
        size = f" of {customers:,} customers each" if customers else ""
        out[f"{prefix}_evidence"] = (
            f"the verdicts below come from the multi-store study: {len(stores['stores'])} "
            f"simulated stores{size}, {stores.get('shards', 0)} shards of (store, cutoff, "
            "training seed), one claim family per paper with Holm's adjustment"
        )
    return out


def plot_store_gaps(
    verdicts: Sequence[ClaimVerdict],
    *,
    figsize=None,
    stores: Mapping[str, Any] | None = None,
):
    """Forest plot: one panel per claim, a dot per store (or per committed single-store run, with
    its interval, before the multi-store study), and the claim's interval as a thick bar at the
    bottom. The x axis is the gap a - b in the claim's metric; zero is dashed.

    ``stores``, the multi-store study the verdicts judged (:func:`load_store_study`), puts its
    file, commit, machine and date in a footer (:mod:`gpa_lib.stamp`); ``None``, no footer."""
    rows = [len(v.store_gaps or v.single_store) + (1 if v.store_gaps else 0) for v in verdicts]
    heights = [0.75 + 0.15 * r for r in rows]  # inches: title and axis, then a line per row
    fig, axes = plt.subplots(
        len(verdicts),
        1,
        figsize=figsize or (7, 0.4 + sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, v in zip(axes[:, 0], verdicts, strict=True):
        j = v.judgement
        units = list(v.store_gaps) or [(r, i.estimate) for r, i in v.single_store[1:]]
        labels = [u for u, _ in units] + ["all stores" if v.from_stores else v.single_store[0][0]]
        y = np.arange(len(labels))[::-1]
        ax.scatter([g for _, g in units], y[:-1], s=16, color="0.35", zorder=3)
        if not v.from_stores:
            for (_, i), yy in zip(v.single_store[1:], y[:-1], strict=True):
                ax.plot([i.lo, i.hi], [yy, yy], color="0.6", lw=1)
        i = j.evidence.interval
        color = {"supported": "tab:green", "contradicted": "tab:red"}.get(j.verdict, "tab:grey")
        ax.plot([i.lo, i.hi], [y[-1], y[-1]], color=color, lw=4, solid_capstyle="butt")
        ax.plot([i.estimate], [y[-1]], "o", color="k", ms=4)
        ax.axvline(0.0, color="k", lw=0.8, ls="--")
        ax.set_yticks(y, labels, fontsize="x-small")
        ax.set_ylim(-0.7, len(labels) - 0.3)
        ax.set_title(f"{_gap_label(j.claim)}: {j.verdict}", fontsize="small", loc="left")
        metric = METRIC_LABELS.get(j.claim.metric, j.claim.metric)
        ax.set_xlabel(f"gap in mean per-customer {metric} (a − b)", fontsize="small")
    fig.tight_layout()
    stamp_results(fig, {STORE_STUDY: stores}, RECSYS_CODE)
    plt.close(fig)  # shown where the chapter places it (a glued figure)
    return fig


def tuning_edges_table(payload: Mapping[str, Any]) -> pd.DataFrame:
    """Which chosen setting sits on an edge of its grid, per model (rows) and store (columns): the
    axis and the side ("hidden high"), "inside" when none. ``payload`` is the multi-store study
    (``tuning`` by store seed) or a single-store backtest (``tuning`` by model; edges recomputed
    with :func:`~gpa_lib.recsys.eval.protocol.grid_edges` where the record has none)."""
    tuning = payload["tuning"]
    by_store = "stores" in payload
    if by_store:  # keys are store seeds: strings once the payload went through JSON
        stores = {f"store {s}": tuning.get(str(s), tuning.get(s)) for s in payload["stores"]}
    else:
        stores = {"one store": tuning}
    rows: dict[str, dict[str, str]] = {}
    for store, models in stores.items():
        for model, record in models.items():
            if "chosen" not in record:
                continue
            edges = record.get("edges")
            if edges is None:
                edges = grid_edges([t["setting"] for t in record["trials"]], record["chosen"])
            cell = ", ".join(f"{axis} {side}" for axis, side in edges.items()) or "inside"
            rows.setdefault(MODEL_LABELS.get(model, model), {})[store] = cell
    return pd.DataFrame.from_dict(rows, orient="index")


def edges_glue(prefix: str, table: pd.DataFrame) -> dict[str, int]:
    """``{prefix}_edges_on``: (model, store) choices on a grid edge; ``_edges_total``: all."""
    cells = table.to_numpy().ravel()
    cells = [c for c in cells if isinstance(c, str)]
    return {
        f"{prefix}_edges_on": sum(c != "inside" for c in cells),
        f"{prefix}_edges_total": len(cells),
    }

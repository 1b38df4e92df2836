"""Chapter 5's size sensitivity: the papers' claims judged again on store families of another size.

The multi-store claim study (:mod:`gpa_lib.recsys.eval.store_verdicts`) runs at 10,000 customers
per store. The same study at other sizes differs only in ``--customers`` (and, at the paper's scale,
in the models it can afford)::

    python -m gpa_lib.bench recsys --study backtest --stores S --customers N --name NAME ...

writing ``data/results/NAME.json``; :data:`SIZE_STUDIES` names the committed ones. Each keeps its own
verdicts: the hierarchical interval over its stores, cutoffs within a store and customers within a
cutoff, Holm's adjustment over the claims of one paper that it measures (fewer claims where fewer
models ran, so the adjustment is milder there), and the per-store gaps. This module reads them side
by side; it does not pool sizes or judge again. A family of one store resamples cutoffs and
customers only: its interval leaves the store's own draw out, and the table says so.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.claims import CLAIMS, Claim
from gpa_lib.recsys.eval.report import MODEL_LABELS, RECSYS_CODE, SLICE_LABELS
from gpa_lib.recsys.eval.shards import STUDY_CLAIMS
from gpa_lib.recsys.eval.store_verdicts import (
    METRIC_LABELS,
    STORE_STUDY,
    edges_glue,
    tuning_edges_table,
)
from gpa_lib.stamp import stamp_results
from gpa_lib.stats import Interval

#: The committed multi-store claim studies of each size, smallest first: file stem (under
#: ``data/results``) -> customers per store that its stores must have.
SIZE_STUDIES = {STORE_STUDY: 10_000, "claims_stores_20k": 20_000, "claims_stores_100k": 100_000}


@dataclass(frozen=True)
class SizePoint:
    """One claim measured by the study of one store size."""

    customers: int  # customers per simulated store
    n_stores: int  # stores of the study
    interval: Interval  # the study's hierarchical interval of the claim's gap a - b
    p_holm: float  # its Holm-adjusted p within the claims the study measured
    verdict: str  # supported / not supported / contradicted, as the study wrote it
    store_gaps: tuple[float, ...]  # the gap in each store (NaN where undefined)


def load_size_studies(results_dir: Any = None) -> dict[str, dict[str, Any]]:
    """The committed studies of :data:`SIZE_STUDIES` present, smallest first: ``{stem: payload}``;
    a study whose stores do not have the size its name declares is an error."""
    from gpa_lib.results import read_result, result_exists

    payloads = {
        name: read_result(name, results_dir)
        for name in SIZE_STUDIES
        if result_exists(name, results_dir)
    }
    for name, payload in payloads.items():
        if study_customers(payload) != SIZE_STUDIES[name]:
            raise ValueError(
                f"study {name!r} has stores of {study_customers(payload):,} customers; "
                f"SIZE_STUDIES says {SIZE_STUDIES[name]:,}"
            )
    return payloads


def study_customers(payload: Mapping[str, Any]) -> int:
    """Customers per store of a multi-store study (every store of it has the same number)."""
    sizes = {int(store["n_customers"]) for store in payload["spec"]["stores"]}
    if len(sizes) != 1:
        raise ValueError(f"the study's stores have {sorted(sizes)} customers; a size study has one")
    return sizes.pop()


def size_point(payload: Mapping[str, Any], claim: str) -> SizePoint | None:
    """The claim ``claim`` as the study ``payload`` judged it, or ``None`` when the study did not
    measure it (one of its two models did not run)."""
    row = next((r for r in payload.get("claims", ()) if r["claim"] == claim), None)
    if row is None:
        return None
    gaps = next(
        (r["store_gaps"] for r in payload.get("comparisons", ()) if r.get("primary") == claim), ()
    )
    return SizePoint(
        customers=study_customers(payload),
        n_stores=len(payload["stores"]),
        interval=Interval.from_dict(row["interval"]),
        p_holm=float(row["p_holm"]),
        verdict=str(row["verdict"]),
        store_gaps=tuple(math.nan if g is None else float(g) for g in gaps),
    )


def _claims() -> list[Claim]:
    """Every claim a store study judges (:data:`~gpa_lib.recsys.eval.shards.STUDY_CLAIMS`), in the
    order of :data:`CLAIMS`."""
    studies = STUDY_CLAIMS["backtest"]
    return [c for family in CLAIMS.values() for c in family if c.study in studies]


def _size_tag(customers: int) -> str:
    return f"{customers // 1000}k"


def _cell(point: SizePoint | None, digits: int) -> str:
    if point is None:
        return "not run"
    stores = f"{point.n_stores} store" + ("s" if point.n_stores != 1 else "")
    return f"{point.interval.text(digits)}, {point.verdict} ({stores})"


def _agreement(points: Mapping[int, SizePoint]) -> str:
    """Whether one claim's verdict is the same at every size that measured it, in words."""
    verdicts = {p.verdict for p in points.values()}
    if len(points) < 2:
        return "one size only"
    if len(verdicts) == 1:
        return f"{verdicts.pop()} at every size"
    return "; ".join(f"{v} at {n:,}" for n, v in ((n, p.verdict) for n, p in points.items()))


def size_study(
    payloads: Mapping[str, Mapping[str, Any]], *, prefix: str = "ch5_size", digits: int = 3
):
    """*The claims at other store sizes*: ``(values, figure, table)`` of the committed size studies
    ``payloads`` (:func:`load_size_studies`).

    Glue values per claim ``c`` and size tag ``s`` ("10k", "20k", "100k"): ``{prefix}_{c}_{s}_text``
    ("+0.003 [-0.003, +0.009], not supported (8 stores)", or "not run") and ``_verdict``; per
    claim ``{prefix}_{c}_agreement`` ("not supported at every size", or the verdict at each size);
    ``{prefix}_edges`` (per size, the tuned choices on an edge of their grid, named for a one-store
    family), ``{prefix}_n_changed`` (claims whose verdict differs between sizes), ``{prefix}_changed``
    (their gaps in words, or "none") and ``{prefix}_status``, one sentence on which families ran. The table
    has one row per claim and one column per size; the figure (``None`` without any study) one
    panel per claim."""
    payloads = {n: payloads[n] for n in SIZE_STUDIES if n in payloads}  # smallest first
    values: dict[str, Any] = {f"{prefix}_status": _status(payloads)}
    rows, panels, changed = [], {}, []
    for claim in _claims():
        points = {
            SIZE_STUDIES[n]: p for n, pl in payloads.items() if (p := size_point(pl, claim.name))
        }
        panels[claim] = points
        row = {"claim": claim.text, "gap": _gap_label(claim)}
        for name, customers in SIZE_STUDIES.items():
            point = points.get(customers) if name in payloads else None
            key = f"{prefix}_{claim.name}_{_size_tag(customers)}"
            values[f"{key}_text"] = _cell(point, digits)
            values[f"{key}_verdict"] = point.verdict if point else "not run"
            row[f"{customers:,} customers"] = _cell(point, digits)
        agreement = _agreement(points)
        values[f"{prefix}_{claim.name}_agreement"] = agreement
        row["across sizes"] = agreement
        if len({p.verdict for p in points.values()}) > 1:
            changed.append(_gap_label(claim))
        rows.append(row)
    values[f"{prefix}_edges"] = _edges_sentence(payloads)
    values[f"{prefix}_n_changed"] = len(changed)
    values[f"{prefix}_changed"] = "; ".join(changed) or "none"
    figure = plot_size_gaps(panels, results=payloads) if payloads else None
    if figure is not None:
        import matplotlib.pyplot as plt

        plt.close(figure)  # shown where the chapter places it (a glued figure)
    return values, figure, pd.DataFrame(rows).set_index("claim")


def _edges_sentence(payloads: Mapping[str, Mapping[str, Any]]) -> str:
    """Per size, how many (model, store) choices of the validation search sit on an edge of their
    grid; for a one-store family, which ("static CF factors high, l2 low; ...")."""
    parts = []
    for name, payload in payloads.items():
        table = tuning_edges_table(payload)
        counts = edges_glue("x", table)
        text = f"{counts['x_edges_on']} of {counts['x_edges_total']} at {SIZE_STUDIES[name]:,}"
        if len(payload["stores"]) == 1:
            cells = table.iloc[:, 0]
            which = "; ".join(f"{m} {c}" for m, c in cells.items() if c != "inside")
            text += f" ({which or 'none'})"
        parts.append(text)
    return "; ".join(parts) or "no size study committed"


def _gap_label(c: Claim) -> str:
    a, b = MODEL_LABELS.get(c.a, c.a), MODEL_LABELS.get(c.b, c.b)
    return f"{a} − {b}, {METRIC_LABELS.get(c.metric, c.metric)} ({SLICE_LABELS[c.slice]})"


def _status(payloads: Mapping[str, Mapping[str, Any]]) -> str:
    if not payloads:
        return "No multi-store claim study is committed yet, so no size is measured."
    parts, first = [], next(iter(payloads.values()))
    for name, payload in payloads.items():
        n = len(payload["stores"])
        protocol = payload["spec"]["protocol"]
        left_out = [MODEL_LABELS.get(m, m) for m in first["models"] if m not in payload["models"]]
        parts.append(
            f"{n} store{'s' if n != 1 else ''} of {SIZE_STUDIES[name]:,} customers "
            f"({protocol['n_cutoffs']} cutoffs, {len(protocol['seeds'])} training seeds"
            + (f"; without {' and '.join(left_out)}" if left_out else "")
            + ")"
        )
    missing = [f"{n}.json" for n in SIZE_STUDIES if n not in payloads]
    text = "The size studies ran " + "; ".join(parts) + "."
    if missing:
        text += " Not committed yet: " + ", ".join(missing) + "."
    return text


def plot_size_gaps(
    panels: Mapping[Claim, Mapping[int, SizePoint]],
    *,
    figsize=None,
    results: Mapping[str, Mapping[str, Any]] | None = None,
):
    """One panel per claim: x is the customers per store (log scale); a grey dot per store's gap,
    the thick bar the study's hierarchical 95% interval with its estimate as a black dot; zero is
    dashed. A claim a size did not measure has no bar there.

    ``results``, the committed studies the panels come from (``{name: payload}``, as
    :func:`load_size_studies` returns them), are named in a footer with their commits
    (:mod:`gpa_lib.stamp`); ``None``, no footer."""
    import matplotlib.pyplot as plt

    claims = list(panels)
    cols = min(3, len(claims))
    rows = math.ceil(len(claims) / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=figsize or (7.2, 2.7 * rows + 0.3),
        squeeze=False,
        constrained_layout=True,
    )
    sizes = sorted(SIZE_STUDIES.values())
    for ax, claim in zip(axes.flat, claims, strict=False):
        for customers, p in panels[claim].items():
            x = customers * np.exp(np.linspace(-0.08, 0.08, max(len(p.store_gaps), 1)))
            ax.scatter(x[: len(p.store_gaps)], p.store_gaps, s=10, color="0.55", zorder=3)
            i = p.interval
            ax.plot([customers] * 2, [i.lo, i.hi], color="tab:blue", lw=4, solid_capstyle="butt")
            ax.plot([customers], [i.estimate], "o", color="k", ms=4, zorder=4)
        ax.axhline(0.0, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{s // 1000}k" for s in sizes])
        ax.minorticks_off()
        ax.set_xlim(sizes[0] / 1.6, sizes[-1] * 1.6)
        ax.set_title(textwrap.fill(_gap_label(claim), 30), fontsize="x-small")
        ax.set_xlabel("customers per store", fontsize="small")
        ax.set_ylabel(f"gap in {METRIC_LABELS.get(claim.metric, claim.metric)}", fontsize="small")
    for ax in list(axes.flat)[len(claims) :]:
        ax.set_visible(False)
    return stamp_results(fig, results or {}, RECSYS_CODE)

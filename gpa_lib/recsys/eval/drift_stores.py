"""Chapter 5's drift control over stores: the LSTM's lead on known articles at each drift of tastes,
measured on a family of simulated stores per drift, and whether the lead grows with drift.

The drifting family is the claims' own study, ``data/results/claims_stores.json`` (the backtest's
store, drift 0.7; :mod:`gpa_lib.recsys.eval.store_verdicts`). The control is the same study with
the simulator's ``drift`` set to 0 (static tastes) and only the models the control compares::

    python -m gpa_lib.bench recsys --study backtest --stores 8 --drift 0 --name drift0_stores ...

giving ``data/results/drift0_stores.json``. Its stores differ from the claims' only in their drift
(same seeds, sizes, weeks and protocol; :func:`check_same_family` refuses anything else), so the
control, the backtest and the ablation claims are set side by side. Within one drift the
gap of two models and its interval are the study's own (the hierarchical bootstrap over stores,
cutoffs within a store and customers within a cutoff, paired between the models), with the gap in
every store beside it. Between the two drifts, :func:`store_bootstrap_difference` gives the
difference of the mean per-store gap with a percentile interval from resampling the stores of each
drift with replacement, independently of the other drift. Each store's gap already carries its own
cutoff and customer noise, so resampling stores carries it too. A mean of ``S`` values resampled
has ``(S - 1) / S`` of the usual variance ``s**2 / S``, too narrow with few stores, so each
family's resampled means are spread about its mean by ``sqrt(S / (S - 1))`` (the rescaled
bootstrap); a family of one store has no spread to resample and gives no interval. With eight
stores a side the percentile interval is still only roughly calibrated: a reading of the evidence,
not an exact test. Both studies use store seeds ``--seed`` to
``--seed + S - 1``; the families are treated as independent, which is conservative when the same
seed at both drifts gives correlated gaps.

The drift control is not one of the papers' claims judged with Holm
(:mod:`gpa_lib.recsys.eval.claims`): its verdict, "the LSTM's lead over static CF grows with
drift", is :func:`gpa_lib.stats.direction_verdict` of the difference's interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.eval.report import MODEL_LABELS, RECSYS_CODE, SLICE_LABELS, verdict
from gpa_lib.stamp import stamp_results
from gpa_lib.stats import Interval, bootstrap_p, direction_verdict

#: The committed multi-store drift studies: file stem (under ``data/results``) -> the drift of its
#: stores; the first is the control (static tastes), the second the drifting family (the claims'
#: study, :data:`gpa_lib.recsys.eval.store_verdicts.STORE_STUDY`).
DRIFT_STORE_STUDIES = {"drift0_stores": 0.0, "claims_stores": 0.7}
#: The gaps of the control: glue tag -> (model a, model b), the gap being a - b.
DRIFT_STORE_GAPS = {"cf": ("lstm", "static_cf"), "dna": ("lstm", "fashion_dna")}
#: Its metrics: glue tag -> metric name of the study's summary.
DRIFT_STORE_METRICS = {"auc": "auc", "map": "map@12"}
#: The slice: known articles, the only place a customer's style can be dynamic or static.
DRIFT_STORE_SLICE = "warm"
#: How a metric is named on an axis and in the table.
_METRIC_LABELS = {"auc": "AUC", "map@12": "MAP@12"}
#: The method of :func:`store_bootstrap_difference`, as its intervals record it.
DIFFERENCE_METHOD = (
    "rescaled bootstrap over the stores of each drift, independently (mean per-store gap)"
)


@dataclass(frozen=True)
class DriftGap:
    """One gap a - b of one multi-store study (one drift)."""

    drift: float  # the simulator's drift of tastes of every store of the study
    interval: Interval  # the study's hierarchical interval (stores, cutoffs, customers)
    store_gaps: tuple[tuple[int, float], ...]  # (store seed, gap a - b within that store)

    @property
    def n_positive(self) -> int:
        return sum(g > 0 for _, g in self.store_gaps if math.isfinite(g))


def load_drift_stores(results_dir: Any = None) -> dict[str, dict[str, Any]]:
    """The committed multi-store drift studies present: ``{file stem: payload}`` (empty before
    either of :data:`DRIFT_STORE_STUDIES` is committed); a file whose stores have another drift
    than its name says is an error."""
    from gpa_lib.results import read_result, result_exists

    payloads = {
        name: read_result(name, results_dir)
        for name in DRIFT_STORE_STUDIES
        if result_exists(name, results_dir)
    }
    _check_drifts(payloads)
    check_same_family(payloads)
    return payloads


#: Fields of a store's configuration that may differ between the two drift families.
FAMILY_FREE_FIELDS = ("drift",)


def check_same_family(payloads: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse two drift studies whose stores differ in anything but their drift (the store seeds,
    sizes, weeks, every other simulator setting) or whose protocols differ: their gaps would not be
    the same quantity. One study, or none, passes."""
    if len(payloads) < 2:
        return
    (low_name, low), (high_name, high) = list(payloads.items())[:2]

    def stores(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in store.items() if k not in FAMILY_FREE_FIELDS}
            for store in payload["spec"]["stores"]
        ]

    a, b = stores(low), stores(high)
    if len(a) != len(b):
        raise ValueError(
            f"drift studies {low_name!r} and {high_name!r} have {len(a)} and {len(b)} stores; "
            "a drift control needs the same stores at both drifts"
        )
    for x, y in zip(a, b, strict=True):
        fields = sorted(k for k in x.keys() | y.keys() if x.get(k) != y.get(k))
        if fields:
            raise ValueError(
                f"store seed {x.get('seed')} of {low_name!r} differs from {high_name!r}'s in "
                f"{fields} ({[x.get(k) for k in fields]} against {[y.get(k) for k in fields]}); "
                "only the drift may differ"
            )
    if low["spec"]["protocol"] != high["spec"]["protocol"]:
        fields = sorted(
            k
            for k in low["spec"]["protocol"].keys() | high["spec"]["protocol"].keys()
            if low["spec"]["protocol"].get(k) != high["spec"]["protocol"].get(k)
        )
        raise ValueError(
            f"drift studies {low_name!r} and {high_name!r} ran different protocols ({fields})"
        )


def _check_drifts(payloads: Mapping[str, Mapping[str, Any]]) -> None:
    for name, payload in payloads.items():
        if name not in DRIFT_STORE_STUDIES:
            raise ValueError(f"study {name!r} is not one of {list(DRIFT_STORE_STUDIES)}")
        if study_drift(payload) != DRIFT_STORE_STUDIES[name]:
            raise ValueError(
                f"study {name!r} has stores of drift {study_drift(payload):g}, its name says "
                f"{DRIFT_STORE_STUDIES[name]:g}"
            )


def study_drift(payload: Mapping[str, Any]) -> float:
    """The drift of tastes of every store of a multi-store study (its ``spec``)."""
    drifts = {float(store["drift"]) for store in payload["spec"]["stores"]}
    if len(drifts) != 1:
        raise ValueError(f"the study's stores have drifts {sorted(drifts)}; a drift study has one")
    return drifts.pop()


def drift_gap(
    payload: Mapping[str, Any], a: str, b: str, metric: str, slice_: str = DRIFT_STORE_SLICE
) -> DriftGap:
    """The gap ``a - b`` in ``metric`` on ``slice_`` of one multi-store study."""
    for row in payload["comparisons"]:
        if (row["a"], row["b"], row["slice"], row["metric"]) == (a, b, slice_, metric):
            gaps = [math.nan if g is None else float(g) for g in row["store_gaps"]]
            return DriftGap(
                study_drift(payload),
                Interval.from_dict(row["gap"]),
                tuple(zip((int(s) for s in payload["stores"]), gaps, strict=True)),
            )
    raise ValueError(
        f"the study has no comparison a={a!r}, b={b!r}, slice={slice_!r}, metric={metric!r}; "
        f"its models are {payload.get('models')}"
    )


def store_bootstrap_difference(
    low: Sequence[float],
    high: Sequence[float],
    *,
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[Interval, float]:
    """``(interval, p)`` of ``mean(high) - mean(low)``, two independent samples of per-store gaps:
    each replicate draws the ``S`` stores of ``low`` and of ``high`` with replacement,
    independently, and spreads each resampled mean about its sample's mean by ``sqrt(S / (S -
    1))`` so that its variance is the unbiased ``s**2 / S``; the interval is the percentile
    interval of the replicate differences and ``p`` the two-sided
    :func:`gpa_lib.stats.bootstrap_p` of "no difference". NaN gaps are dropped; with fewer than
    two finite gaps on either side the interval and ``p`` are NaN (``n`` is the smaller count)."""
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be >= 1")
    samples = [np.asarray(x, dtype=np.float64) for x in (low, high)]
    samples = [x[np.isfinite(x)] for x in samples]
    n = min(x.size for x in samples)
    estimate = float(samples[1].mean() - samples[0].mean()) if n else math.nan
    if n < 2:
        return Interval(estimate, math.nan, math.nan, level, DIFFERENCE_METHOD, n), math.nan
    rng = np.random.default_rng(seed)
    low_means, high_means = (
        x.mean()
        + math.sqrt(x.size / (x.size - 1))
        * (x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(1) - x.mean())  # (n_boot,)
        for x in samples
    )
    replicates = high_means - low_means
    interval = Interval.from_replicates(
        estimate, replicates, level=level, method=DIFFERENCE_METHOD, n=n
    )
    return interval, bootstrap_p(replicates)


def _gap_label(tag: str, metric: str) -> str:
    a, b = (MODEL_LABELS[m] for m in DRIFT_STORE_GAPS[tag])
    return f"{a} − {b}, {_METRIC_LABELS[metric]} ({SLICE_LABELS[DRIFT_STORE_SLICE]} articles)"


def _status(payloads: Mapping[str, Mapping[str, Any]]) -> str:
    if not payloads:
        return (
            "The multi-store drift control is not committed yet (data/results/drift0_stores.json "
            "and data/results/claims_stores.json), so the single-store sweep below is the only "
            "drift control of this chapter."
        )
    first = next(iter(payloads.values()))
    customers = first["spec"]["stores"][0]["n_customers"]
    cutoffs = first["spec"]["protocol"]["n_cutoffs"]
    seeds = len(first["spec"]["protocol"]["seeds"])
    counts = [len(p["stores"]) for p in payloads.values()]
    where = " and ".join(f"{DRIFT_STORE_STUDIES[n]:g}" for n in payloads)
    per = "" if len(payloads) == 1 else " per drift" if len(set(counts)) == 1 else " (by drift)"
    n_stores = str(counts[0]) if len(set(counts)) == 1 else " and ".join(map(str, counts))
    text = (
        f"The multi-store drift control simulated {n_stores} stores of {customers:,} customers "
        f"each{per}, at drift {where}, with {cutoffs} test cutoffs and {seeds} training "
        "seed(s) per store, every store tuned on its own validation cutoff; the drifting "
        "family is the claims' study, the control the same stores with static tastes."
    )
    if len(payloads) < len(DRIFT_STORE_STUDIES):
        missing = ", ".join(f"{n}.json" for n in DRIFT_STORE_STUDIES if n not in payloads)
        text += f" Not committed yet: {missing}, so the difference between drifts is not measured."
    return text


def drift_stores_study(
    payloads: Mapping[str, Mapping[str, Any]],
    *,
    prefix: str = "ch5_drs",
    n_boot: int = 10_000,
    seed: int = 0,
):
    """*The control over stores*: ``(values, figure, table)`` of the committed multi-store drift
    studies ``payloads`` (:func:`load_drift_stores`: both, one or none).

    Glue values, for each gap tag ``g`` of :data:`DRIFT_STORE_GAPS` and metric tag ``m`` of
    :data:`DRIFT_STORE_METRICS`, at the control's drift (``low``, drift 0) and the drifting one
    (``high``): ``{prefix}_{g}_{m}_{low|high}`` (the gap), ``_lo``, ``_hi``, ``_text`` ("+0.001
    [-0.010, +0.012]", or "not committed"), ``_verdict`` (where the interval lies relative to
    zero), ``_n_positive`` and ``_n_stores``; the difference high - low ``{prefix}_{g}_{m}_diff``,
    ``_lo``, ``_hi``, ``_p``, ``_text`` and ``_grows`` (:func:`~gpa_lib.stats.direction_verdict`
    of its interval: "supported" when the gap grows with drift); ``{prefix}_grows_verdict`` (that
    of LSTM − static CF in AUC), ``{prefix}_story`` (whether the paper's story passes the test:
    zero gap at drift 0 and a gap that grows; ``_cf_story`` and ``_dna_story`` in AUC),
    ``{prefix}_drift_low`` and ``_drift_high`` (the drifts of :data:`DRIFT_STORE_STUDIES`, whether
    committed or not) and ``{prefix}_status``, one sentence on what the studies are (or that they
    are not committed). The figure is ``None`` without any study; the table has one row per gap."""
    _check_drifts(payloads)
    check_same_family(payloads)
    payloads = {n: payloads[n] for n in DRIFT_STORE_STUDIES if n in payloads}  # control first
    values: dict[str, Any] = {f"{prefix}_status": _status(payloads)}
    low_drift, high_drift = DRIFT_STORE_STUDIES.values()
    low_name, high_name = f"control (drift {low_drift:g})", f"drifting (drift {high_drift:g})"
    rows, panels = [], {}
    for tag, (a, b) in DRIFT_STORE_GAPS.items():
        for mtag, metric in DRIFT_STORE_METRICS.items():
            gaps = {n: drift_gap(p, a, b, metric) for n, p in payloads.items()}
            panels[tag, metric] = list(gaps.values())
            low, high = (gaps.get(n) for n in DRIFT_STORE_STUDIES)
            digits = 4 if metric == "map@12" else 3
            key = f"{prefix}_{tag}_{mtag}"
            for side, g in (("low", low), ("high", high)):
                i = g.interval if g else Interval(math.nan, math.nan, math.nan)
                values[f"{key}_{side}"], values[f"{key}_{side}_lo"] = i.estimate, i.lo
                values[f"{key}_{side}_hi"] = i.hi
                values[f"{key}_{side}_text"] = i.text(digits) if g else "not committed"
                values[f"{key}_{side}_verdict"] = verdict(i.lo, i.hi) if g else "not measured"
                values[f"{key}_{side}_n_positive"] = g.n_positive if g else 0
                values[f"{key}_{side}_n_stores"] = len(g.store_gaps) if g else 0
            if low and high:
                diff, p = store_bootstrap_difference(
                    [x for _, x in low.store_gaps],
                    [x for _, x in high.store_gaps],
                    n_boot=n_boot,
                    seed=seed,
                )
                grows, diff_text = direction_verdict(diff.lo, diff.hi), diff.text(digits)
            else:
                diff, p = Interval(math.nan, math.nan, math.nan, method=DIFFERENCE_METHOD), math.nan
                grows, diff_text = "not measured", "not measured"
            values[f"{key}_diff"], values[f"{key}_diff_lo"] = diff.estimate, diff.lo
            values[f"{key}_diff_hi"], values[f"{key}_diff_p"] = diff.hi, p
            values[f"{key}_diff_text"], values[f"{key}_grows"] = diff_text, grows
            rows.append(
                {
                    "gap": _gap_label(tag, metric),
                    low_name: values[f"{key}_low_text"],
                    high_name: values[f"{key}_high_text"],
                    "difference (drifting − control)": diff_text,
                    "the gap grows with drift": grows,
                }
            )
    values[f"{prefix}_drift_low"], values[f"{prefix}_drift_high"] = low_drift, high_drift
    values[f"{prefix}_grows_verdict"] = values[f"{prefix}_cf_auc_grows"]
    for tag in DRIFT_STORE_GAPS:
        values[f"{prefix}_{tag}_story"] = _story(values, f"{prefix}_{tag}_auc")
    values[f"{prefix}_story"] = values[f"{prefix}_cf_story"]
    figure = plot_drift_store_gaps(panels, results=payloads) if payloads else None
    if figure is not None:
        import matplotlib.pyplot as plt

        plt.close(figure)  # shown where the chapter places it (a glued figure)
    return values, figure, pd.DataFrame(rows).set_index("gap")


def _story(values: Mapping[str, Any], key: str) -> str:
    """The paper's story against one gap: zero at drift 0 (its interval holds 0) and a lead that
    grows with drift (the difference's verdict is "supported")."""
    if values[f"{key}_grows"] == "not measured":
        return "is not tested yet (both drifts are needed)"
    zero = values[f"{key}_low_verdict"] == "includes zero"
    grows = values[f"{key}_grows"] == "supported"
    if zero and grows:
        return "passes (no gap without drift, a larger one with drift)"
    control = f"a gap at drift {next(iter(DRIFT_STORE_STUDIES.values())):g}"
    reasons = [r for r, bad in ((control, not zero), ("no growth", not grows)) if bad]
    return "fails (" + " and ".join(reasons) + ")"


def plot_drift_store_gaps(
    panels: Mapping[tuple[str, str], Sequence[DriftGap]],
    *,
    figsize=None,
    results: Mapping[str, Mapping[str, Any]] | None = None,
):
    """Forest-like figure: one panel per (gap, metric) of ``panels``; x is the simulator's drift of
    tastes, a grey dot per store's gap (spread a little around its drift so that stores do not
    hide each other), the thick bar the study's hierarchical 95% interval with its estimate as a
    black dot; zero is dashed.

    ``results``, the committed studies the panels come from (``{name: payload}``, as
    :func:`load_drift_stores` returns them), are named in a footer with their commits
    (:mod:`gpa_lib.stamp`); ``None``, no footer."""
    import matplotlib.pyplot as plt

    tags = list(dict.fromkeys(t for t, _ in panels))
    metrics = list(dict.fromkeys(m for _, m in panels))
    fig, axes = plt.subplots(
        len(metrics),
        len(tags),
        figsize=figsize or (7, 2.6 * len(metrics) + 0.4),
        squeeze=False,
        constrained_layout=True,
    )
    for (tag, metric), gaps in panels.items():
        ax = axes[metrics.index(metric), tags.index(tag)]
        drifts = [g.drift for g in gaps]
        spread = 0.04 * max(max(drifts) - min(drifts), 1.0)
        for g in gaps:
            x = g.drift + np.linspace(-spread, spread, len(g.store_gaps))  # (stores,)
            ax.scatter(x, [v for _, v in g.store_gaps], s=14, color="0.55", zorder=3)
            i = g.interval
            ax.plot([g.drift, g.drift], [i.lo, i.hi], color="tab:blue", lw=4, solid_capstyle="butt")
            ax.plot([g.drift], [i.estimate], "o", color="k", ms=4, zorder=4)
        ax.axhline(0.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(drifts, [f"{d:g}" for d in drifts])
        ax.set_xlim(min(drifts) - 3 * spread, max(drifts) + 3 * spread)
        a, b = (MODEL_LABELS[m] for m in DRIFT_STORE_GAPS[tag])
        ax.set_title(f"{a} − {b}, {SLICE_LABELS[DRIFT_STORE_SLICE]} articles", fontsize="small")
        ax.set_xlabel("drift of tastes (simulator's drift, 0 = static)", fontsize="small")
        ax.set_ylabel(f"gap in mean per-customer {_METRIC_LABELS[metric]}", fontsize="small")
    return stamp_results(fig, results or {}, RECSYS_CODE)

"""The Fashion DNA paper's comparison of article inputs: DNA from tags only, image only, or both.

The paper (arXiv 1609.02489) computes DNA from an article's attributes ("tags"), from its image, or
from both, and compares how well each predicts purchases. On the simulator that comparison can only
mean something when images carry information the attribute table lacks: ``SimConfig.image_share``
moves that share of every article latent into hidden values that only the image draws.

- :func:`run_variants`: the three variants of :data:`VARIANTS` fitted with every training seed of a
  :class:`~gpa_lib.recsys.eval.protocol.ProtocolConfig` at its rolling cutoffs of one store, and
  evaluated as every backtest is (:func:`~gpa_lib.recsys.eval.backtest.run_backtest`: candidates
  on sale at the cutoff plus the window's launches, models handed nothing dated on or after the
  cutoff) on all, new (launched on or after the cutoff: cold start) and known articles;
- :func:`variants_study`: the same on several stores (the store whose images carry part of the
  latent, and a control where they carry nothing), with the gain of adding the image compared
  between stores;
- :func:`variants_table`, :func:`plot_variants`, :func:`variants_glue`: what chapter 4 shows.

Intervals are 95% block bootstraps (:func:`~gpa_lib.recsys.eval.protocol.block_bootstrap`: cutoffs,
customers within each cutoff, one training seed per cutoff), paired across the variants of a store;
a contrast between two stores uses their independent bootstraps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.eval.analysis import heldout_r2
from gpa_lib.recsys.eval.backtest import SLICES, metric_names, run_backtest, window_record
from gpa_lib.recsys.eval.protocol import Bootstrap, ProtocolConfig, block_bootstrap, seed_values
from gpa_lib.recsys.eval.report import RECSYS_CODE
from gpa_lib.recsys.models.presets import MODEL_PARAMS, make_model
from gpa_lib.stamp import stamp_results

#: The paper's three inputs, as :class:`~gpa_lib.recsys.models.FashionDNA` settings on top of the
#: profile's ``fashion_dna`` settings (the image variants get ``image_dim`` and ``image_batch``).
VARIANTS: dict[str, dict[str, Any]] = {
    "tags": {"image_dim": 0},
    "image": {"use_attributes": False},
    "both": {},
}
VARIANT_LABELS = {"tags": "tags only", "image": "image only", "both": "tags and image"}
#: The gaps reported for every store, slice and metric: ``a - b``.
VARIANT_GAPS = (("both", "tags"), ("image", "tags"), ("both", "image"))
#: Features of the image CNN in the variants that read images (the profiles leave images off).
IMAGE_DIM = 32
#: Articles the CNN re-encodes per training batch; at this size every article of a batch, so the
#: CNN gets a gradient from each (the default 256 leaves it undertrained on a 2-core budget).
IMAGE_BATCH = 4096


def variant_params(
    name: str, image_dim: int = IMAGE_DIM, image_batch: int = IMAGE_BATCH
) -> dict[str, Any]:
    """The :class:`FashionDNA` overrides of variant ``name`` (one of :data:`VARIANTS`)."""
    if name not in VARIANTS:
        raise ValueError(f"name={name!r} is not one of {sorted(VARIANTS)}")
    if image_dim < 1 or image_batch < 1:
        raise ValueError(f"image_dim={image_dim} and image_batch={image_batch} must be >= 1")
    return {"image_dim": image_dim, "image_batch": image_batch, **VARIANTS[name]}


def variant_factories(
    profile: str = "full",
    *,
    random_state: int = 0,
    image_dim: int = IMAGE_DIM,
    image_batch: int = IMAGE_BATCH,
    variants: tuple[str, ...] = tuple(VARIANTS),
) -> dict[str, Any]:
    """``{variant: factory}`` for :func:`~gpa_lib.recsys.eval.backtest.run_backtest`."""

    def factory(name: str):
        params = variant_params(name, image_dim, image_batch)
        return lambda fitted: make_model(
            "fashion_dna", profile, random_state=random_state, **params
        )

    return {name: factory(name) for name in variants}


def _recovery(data: SalesData, results: list, variants: list[str]) -> dict[str, Any]:
    """Held-out R² of a linear map from each variant's DNA (at the last cutoff, mean over seeds) to
    the true latent and to its attribute and image parts, on known and on new articles."""
    truth = data.truth
    if truth is None:
        return {}
    window = results[0].windows[-1]
    launch = data.articles["launch"].to_numpy()
    article_ids = data.articles.index.to_numpy()
    rows = {
        "known": np.flatnonzero(launch < window.cutoff.to_datetime64()),
        "new": np.flatnonzero(
            (launch >= window.cutoff.to_datetime64()) & (launch < window.end.to_datetime64())
        ),
    }
    targets = {"latent": truth.article_latent, "attribute_part": truth.article_attribute_latent}
    if truth.config.image_share > 0:
        targets["image_part"] = truth.article_image_latent
    out: dict[str, Any] = {}
    for name in variants:
        out[name] = {}
        for subset, index in rows.items():
            if len(index) < 20:  # too few articles for a held-out half
                continue
            for target_name, target in targets.items():
                values = [
                    heldout_r2(r.fitted[name].dna(article_ids[index]), target[index], seed=i)
                    for i, r in enumerate(results)
                ]
                out[name][f"{subset}/{target_name}"] = float(np.mean(values))
    return out


def _run_store(
    data: SalesData,
    profile: str,
    config: ProtocolConfig,
    *,
    image_dim: int,
    image_batch: int,
    variants: tuple[str, ...],
    progress: bool,
    desc: str,
) -> tuple[dict[str, Any], Bootstrap]:
    tic = time.perf_counter()
    results = []
    bar = tqdm(config.seeds, desc=desc, unit="seed", disable=not progress)
    for seed in bar:
        factories = variant_factories(
            profile,
            random_state=seed,
            image_dim=image_dim,
            image_batch=image_batch,
            variants=variants,
        )
        results.append(run_backtest(data, factories, config.backtest(), keep_models=True))
        bar.set_postfix_str(f"seed {seed}: {time.perf_counter() - tic:.0f} s")
    bar.close()
    names = results[0].models
    values = seed_values(results, config.k)
    boot = block_bootstrap(values, n_boot=config.n_boot, level=config.level, seed=config.seed)
    payload = {
        "variants": names,
        "settings": {
            n: {**MODEL_PARAMS[profile]["fashion_dna"], **variant_params(n, image_dim, image_batch)}
            for n in names
        },
        "windows": [window_record(w) for w in results[0].windows],
        "summary": {
            n: {f"{s}/{m}": boot.stats((n, s, m)) for s in SLICES for m in metric_names(config.k)}
            for n in names
        },
        "gaps": [
            {"a": a, "b": b, "slice": s, "metric": m} | boot.gap((a, s, m), (b, s, m))
            for a, b in VARIANT_GAPS
            if a in names and b in names
            for s in SLICES
            for m in metric_names(config.k)
        ],
        "per_cutoff": {
            n: {
                f"{s}/{m}": [
                    [float(np.nanmean(v[i])) for v in values[n, s, m]]
                    for i in range(len(config.seeds))
                ]
                for s in SLICES
                for m in ("auc", f"map@{config.k}")
            }
            for n in names
        },
        "recovery_r2": _recovery(data, results, names),
        "fit_seconds": {
            n: float(np.mean([np.mean(r.fit_seconds[n]) for r in results])) for n in names
        },
        "seconds": round(time.perf_counter() - tic, 1),
    }
    return payload, boot


def run_variants(
    data: SalesData,
    profile: str = "full",
    config: ProtocolConfig | None = None,
    *,
    image_dim: int = IMAGE_DIM,
    image_batch: int = IMAGE_BATCH,
    variants: tuple[str, ...] = tuple(VARIANTS),
    progress: bool = False,
) -> dict[str, Any]:
    """The three variants on one store: fitted with every seed of ``config`` at its rolling cutoffs.

    Returns ``{"variants", "settings", "windows", "summary": {variant: {"slice/metric": {mean, lo,
    hi}}}, "gaps": [{a, b, slice, metric, diff, lo, hi, significant}], "per_cutoff" (seeds x
    cutoffs means), "recovery_r2" (held-out R² of a linear map from DNA to the true latent and its
    attribute and image parts, known and new articles, last cutoff), "fit_seconds", "seconds"}``.
    """
    config = config or ProtocolConfig()
    payload, _ = _run_store(
        data,
        profile,
        config,
        image_dim=image_dim,
        image_batch=image_batch,
        variants=variants,
        progress=progress,
        desc="dna variants",
    )
    return payload


def _store_facts(data: SalesData) -> dict[str, Any]:
    config = data.truth.config if data.truth is not None else None
    facts = {"items": len(data.transactions), "articles": len(data.articles)}
    if config is not None:
        facts |= {
            "customers": config.n_customers,
            "weeks": config.n_weeks,
            "articles_per_week": config.articles_per_week,
            "seed": config.seed,
            "attribute_share": config.attribute_share,
            "image_share": config.image_share,
        }
    return facts


def variants_study(
    stores: Mapping[str, SalesData],
    profile: str = "full",
    config: ProtocolConfig | None = None,
    *,
    image_dim: int = IMAGE_DIM,
    image_batch: int = IMAGE_BATCH,
    control: str | None = "control",
    progress: bool = False,
) -> dict[str, Any]:
    """:func:`run_variants` on each named store, and how the image's gain differs between stores.

    ``stores`` maps a label to simulated data (same seeds and cutoffs are used on each). With
    ``control`` one of the labels, ``"image_gain"`` holds, for every other store, each gap of
    :data:`VARIANT_GAPS` minus the same gap on the control, with an interval from the two
    stores' independent bootstraps (``significant`` when it excludes zero).
    """
    config = config or ProtocolConfig()
    if not stores:
        raise ValueError("stores is empty; pass at least one label -> SalesData")
    if control is not None and control not in stores:
        raise ValueError(f"control={control!r} is not one of the stores {sorted(stores)}")
    payloads, boots = {}, {}
    for label, data in stores.items():
        payloads[label], boots[label] = _run_store(
            data,
            profile,
            config,
            image_dim=image_dim,
            image_batch=image_batch,
            variants=tuple(VARIANTS),
            progress=progress,
            desc=f"dna variants, {label} store",
        )
        payloads[label]["store"] = _store_facts(data)
    gains = []
    if control is not None:
        base = boots[control]
        for label, boot in boots.items():
            if label == control:
                continue
            for a, b in VARIANT_GAPS:
                for s in SLICES:
                    for m in metric_names(config.k):
                        here = boot.replicates[a, s, m] - boot.replicates[b, s, m]
                        there = base.replicates[a, s, m] - base.replicates[b, s, m]
                        lo, hi = boot.interval(here - there)
                        diff = (boot.point[a, s, m] - boot.point[b, s, m]) - (
                            base.point[a, s, m] - base.point[b, s, m]
                        )
                        gains.append(
                            {"store": label, "a": a, "b": b, "slice": s, "metric": m}
                            | {"diff": diff, "lo": lo, "hi": hi}
                            | {"significant": bool(lo > 0 or hi < 0)}
                        )
    return {
        "stores": payloads,
        "control": control,
        "image_gain": gains,
        "variant_labels": VARIANT_LABELS,
    }


# ---------------------------------------------------------------------- what the chapter shows


def _cell(stats: Mapping[str, float], digits: int) -> str:
    if stats["mean"] != stats["mean"]:  # NaN: a slice without candidates
        return "n/a"
    return f"{stats['mean']:.{digits}f} [{stats['lo']:.{digits}f}, {stats['hi']:.{digits}f}]"


def variants_table(payload: Mapping[str, Any], metrics: tuple[str, ...] = ("auc", "map@12")):
    """One row per (store, variant), one "mean [lo, hi]" column per metric and slice."""
    import pandas as pd

    names = {"all": "all", "cold": "new", "warm": "known"}
    rows = {}
    for label, store in payload["stores"].items():
        for variant in store["variants"]:
            rows[(label, VARIANT_LABELS.get(variant, variant))] = {
                f"{metric} {names[s]}": _cell(
                    store["summary"][variant][f"{s}/{metric}"], 3 if metric == "auc" else 4
                )
                for metric in metrics
                for s in SLICES
            }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.names = ["store", "DNA from"]
    return frame


def plot_variants(
    payload: Mapping[str, Any], metric: str = "auc", axes=None, *, source: str | None = None
):
    """Mean ``metric`` per slice (x) and variant (markers) with 95% intervals, one panel per store.
    ``source``, the name of the committed result ``payload`` was read from (``"dna_variants"``),
    puts its file, commit, machine and date in a footer of the figure (:mod:`gpa_lib.stamp`)."""
    import matplotlib.pyplot as plt

    stores = list(payload["stores"])
    if axes is None:
        _, axes = plt.subplots(
            1,
            len(stores),
            figsize=(min(5 * len(stores), 10), 4),
            sharey=True,
            constrained_layout=True,
        )
    axes = np.atleast_1d(axes)
    slices = {"all": "all", "cold": "new", "warm": "known"}
    for ax, label in zip(axes, stores, strict=True):
        store = payload["stores"][label]
        variants = store["variants"]
        for j, variant in enumerate(variants):
            offset = (j - (len(variants) - 1) / 2) * 0.2
            stats = [store["summary"][variant][f"{s}/{metric}"] for s in slices]
            means = np.array([x["mean"] for x in stats])
            errors = np.array([[x["mean"] - x["lo"], x["hi"] - x["mean"]] for x in stats]).T
            ax.errorbar(
                np.arange(len(slices)) + offset,
                means,
                yerr=errors,
                fmt="o",
                capsize=3,
                label=VARIANT_LABELS.get(variant, variant),
            )
        share = store.get("store", {}).get("image_share")
        title = f"{label} store" + ("" if share is None else f" (image_share {share:g})")
        ax.set_title(title)
        ax.set_xticks(np.arange(len(slices)), [f"{name} articles" for name in slices.values()])
        ax.set_xlabel("candidates (new: launched on or after the cutoff)")
        if metric == "auc":
            ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="chance")
    axes[0].set_ylabel(f"mean per-customer {metric.upper()} (held-out purchases)")
    axes[-1].legend(fontsize="small")
    return stamp_results(axes[0].figure, {source: payload} if source else {}, RECSYS_CODE)


def _find(rows, **keys) -> dict[str, Any]:
    for row in rows:
        if all(row[k] == v for k, v in keys.items()):
            return row
    raise ValueError(f"no row with {keys} in the dna-variants results")


def _span(row: Mapping[str, Any], digits: int = 3) -> str:
    return f"{row['diff']:+.{digits}f} ({row['lo']:+.{digits}f} to {row['hi']:+.{digits}f})"


def variants_glue(
    payload: Mapping[str, Any] | None,
    prefix: str = "ch4_var",
    store: str = "images",
    command: str = "python -m gpa_lib.bench recsys --study dna-variants",
) -> dict[str, Any]:
    """The sentences chapter 4 glues about the study: ``{prefix}_measured`` (the gaps in AUC on new
    and known articles on ``store`` and on the control), ``{prefix}_data`` (stores, cutoffs,
    seeds, customers) and ``{prefix}_interval`` (how the intervals were made, and the gain of the
    image over the control's); when ``payload`` is None each says that the study has not run and
    names ``command``."""
    if payload is None:
        missing = (
            f"nothing yet: data/results/dna_variants.json is not in this checkout, and `{command}` "
            "writes it."
        )
        return {
            f"{prefix}_measured": missing,
            f"{prefix}_data": "none yet",
            f"{prefix}_interval": "none yet",
        }
    control = payload["control"]
    main = payload["stores"][store]
    parts = []
    for label in [store] + ([control] if control else []):
        gaps = payload["stores"][label]["gaps"]
        share = payload["stores"][label]["store"]["image_share"]
        words = [
            f"{VARIANT_LABELS[a]} minus {VARIANT_LABELS[b]}: "
            f"{_span(_find(gaps, a=a, b=b, slice='cold', metric='auc'))} on new articles, "
            f"{_span(_find(gaps, a=a, b=b, slice='warm', metric='auc'))} on known ones"
            for a, b in (("both", "tags"), ("image", "tags"))
        ]
        parts.append(f"on the {label} store (image_share {share:g}), AUC " + "; ".join(words))
    measured = "; ".join(parts) + "."
    facts = main["store"]
    windows = main["windows"]
    weeks = (np.datetime64(windows[0]["end"]) - np.datetime64(windows[0]["cutoff"])).astype(
        int
    ) // 7
    data = (
        f"simulated stores of {facts['customers']:,} customers over {facts['weeks']} weeks "
        f"({facts['articles_per_week']} launches a week, attribute_share "
        f"{facts['attribute_share']:g}), {len(windows)} cutoff(s) from {windows[0]['cutoff']} to "
        f"{windows[-1]['cutoff']}, {weeks}-week test windows with "
        f"{int(np.mean([w['customers'] for w in windows])):,} customers and "
        f"{int(np.mean([w['cold_candidates'] for w in windows])):,} new among "
        f"{int(np.mean([w['candidates'] for w in windows])):,} candidates on average, "
        f"{len(main['per_cutoff'][main['variants'][0]]['all/auc'])} training seed(s) per variant"
    )
    provenance = payload.get("provenance")
    if provenance:
        commit = provenance["commit"]
        commit = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
        data += (
            f"; computed at commit {commit} on {provenance['device']['cpu']}, "
            f"{provenance['date'][:10]}, in {provenance['wall_time_s'] or 0:.0f} s"
        )
    interval = "95% block bootstrap over cutoffs, customers and seeds, paired across variants"
    if control:
        gain = _find(
            payload["image_gain"], store=store, a="both", b="tags", slice="cold", metric="auc"
        )
        interval += (
            f"; the gain of adding the image on new articles minus the control's gain is "
            f"{_span(gain)} AUC (independent bootstraps of the two stores; the interval "
            f"{'excludes' if gain['significant'] else 'includes'} zero)"
        )
    return {f"{prefix}_measured": measured, f"{prefix}_data": data, f"{prefix}_interval": interval}

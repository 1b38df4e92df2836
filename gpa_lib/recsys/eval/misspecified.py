"""Does Fashion DNA's cold-start lead survive a store that is not the models' form?

The simulator's default utility has the form the models assume (``style . latent`` with a latent
linear in the attributes, appeal, novelty decay). :func:`misspecified_study` re-simulates a store at
every ``attribute_share`` (how much of an article's latent its attributes explain) with the
misspecified terms off and on (``SimConfig.misspecified``: (category x colour) tastes per customer
segment and demand bursts, :mod:`gpa_lib.recsys.sim.misspecified`), over several store seeds, fits
Fashion DNA and LightFM at rolling cutoffs, and measures their per-customer AUC on new articles
(launched on or after the cutoff) and DNA's AUC on known ones. Every number carries a
:func:`gpa_lib.stats.hierarchical_bootstrap` interval (stores, cutoffs within store, customers within
cutoff): DNA minus LightFM on new articles, paired over the same draws, and DNA's cold/warm ratio.

``python -m gpa_lib.bench recsys --study misspecified`` runs it and writes
``data/results/misspecified.json``; chapter 4 reads it with :func:`misspecified_glue` and
:func:`plot_misspecified`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from gpa_lib.recsys.eval.backtest import evaluate, rolling_cutoffs, test_window
from gpa_lib.recsys.eval.report import RECSYS_CODE, verdict
from gpa_lib.recsys.models import make_model
from gpa_lib.recsys.sim import STORE_PRESETS, simulate_config
from gpa_lib.stamp import stamp_results
from gpa_lib.stats import Interval, hierarchical_bootstrap

#: The two models compared on new articles, as :func:`make_model` names them.
MODELS = ("fashion_dna", "lightfm")
#: Claim words for an interval of DNA minus LightFM (the papers' claim: DNA ahead on new articles).
CLAIM_WORDS = {
    "above zero": "supported",
    "includes zero": "not supported",
    "below zero": "contradicted",
}


@dataclass(frozen=True)
class MisspecifiedConfig:
    """The study's grid and sizes. Sizes in customers and weeks (7 days)."""

    attribute_shares: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)  # SimConfig.attribute_share values
    misspecified: tuple[float, ...] = (0.0, 1.0, 3.0)  # SimConfig.misspecified (0 = off)
    store_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # one simulated store per seed and cell
    preset: str = "full"  # the store preset the cells modify
    n_customers: int = 10_000  # customers per store
    n_weeks: int = 52  # weeks per store
    articles_per_week: int = 30  # launches per week
    n_cutoffs: int = 3  # rolling test cutoffs per store
    test_weeks: int = 4  # length of each test window
    step_weeks: int = 4  # distance between cutoffs
    training_seeds: tuple[int, ...] = (0,)  # model seeds per cutoff
    max_customers: int = 3_000  # customers evaluated per cutoff (seeded sample)
    model_profile: str = "full"  # gpa_lib.recsys.models.presets profile
    n_boot: int = 500  # hierarchical bootstrap replicates
    seed: int = 0  # customer sampling and bootstrap

    def __post_init__(self) -> None:
        if not self.attribute_shares or not self.misspecified or not self.store_seeds:
            raise ValueError(
                f"attribute_shares={self.attribute_shares}, misspecified={self.misspecified} and "
                f"store_seeds={self.store_seeds} must each be non-empty"
            )
        if self.preset not in STORE_PRESETS:
            raise ValueError(f"preset={self.preset!r} is not one of {sorted(STORE_PRESETS)}")


#: The smoke size: seconds, for tests and the chapter's smoke profile.
SMOKE = MisspecifiedConfig(
    attribute_shares=(0.5, 0.9),
    misspecified=(0.0, 3.0),
    store_seeds=(0, 1),
    n_customers=800,
    n_weeks=20,
    articles_per_week=12,
    n_cutoffs=1,
    max_customers=400,
    model_profile="smoke",
    n_boot=100,
)


def cell_key(attribute_share: float, misspecified: float) -> str:
    """``"share=0.5,misspecified=1"``: the JSON key of one cell of the grid."""
    return f"share={attribute_share:g},misspecified={misspecified:g}"


def store_values(
    data, config: MisspecifiedConfig, params: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[np.ndarray]]:
    """Per cutoff of one store: ``{"dna_cold", "lightfm_cold", "dna_warm"}`` each a list over cutoffs
    of ``(n_training_seeds, n_customers)`` per-customer AUC (NaN where undefined)."""
    out: dict[str, list[np.ndarray]] = {"dna_cold": [], "lightfm_cold": [], "dna_warm": []}
    cutoffs = rolling_cutoffs(data, config.n_cutoffs, config.test_weeks, config.step_weeks)
    for cutoff in cutoffs:
        window = test_window(
            data, cutoff, config.test_weeks, max_customers=config.max_customers, seed=config.seed
        )
        past = data.window(end=cutoff)  # nothing on or after the cutoff, and no truth
        rows: dict[str, list[np.ndarray]] = {key: [] for key in out}
        for training_seed in config.training_seeds:
            for name in MODELS:
                model = make_model(
                    name, config.model_profile, random_state=training_seed, **params.get(name, {})
                ).fit(past, until=cutoff)
                metrics = evaluate(model.score(window.customers, window.candidates), window)
                prefix = "dna" if name == "fashion_dna" else name
                rows[f"{prefix}_cold"].append(np.asarray(metrics["cold", "auc"], dtype=float))
                if name == "fashion_dna":
                    rows["dna_warm"].append(np.asarray(metrics["warm", "auc"], dtype=float))
        for key in out:
            out[key].append(np.stack(rows[key]))  # (n_training_seeds, n_customers)
    return out


def summarise_cell(
    stores: list[dict[str, list[np.ndarray]]], *, n_boot: int, seed: int
) -> dict[str, Any]:
    """The intervals of one cell from its stores' :func:`store_values`: each model's cold AUC, DNA's
    warm AUC, the gap DNA - LightFM on new articles, DNA's cold/warm ratio (JSON form)."""
    keys = ("dna_cold", "lightfm_cold", "dna_warm")
    boot = hierarchical_bootstrap(
        {key: [store[key] for store in stores] for key in keys}, n_boot=n_boot, seed=seed
    )
    gap = boot.gap("dna_cold", "lightfm_cold")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = Interval.from_replicates(
            boot.point["dna_cold"] / boot.point["dna_warm"],
            boot.replicates["dna_cold"] / boot.replicates["dna_warm"],
            method=boot.method,
            n=boot.n_stores,
        )
    return {
        **{key: boot.interval(key).to_dict() for key in keys},
        "gap_dna_lightfm_cold": gap.to_dict(),
        "dna_cold_warm_ratio": ratio.to_dict(),
        "store_gaps": [float(g) for g in boot.store_gaps("dna_cold", "lightfm_cold")],
        "claim": CLAIM_WORDS[verdict(gap.lo, gap.hi)],
    }


def tuned_params(backtest: Mapping[str, Any] | None, profile: str) -> dict[str, dict[str, Any]]:
    """The settings the backtest's validation chose for DNA and LightFM (``backtest.json``), when
    it ran the same model ``profile``; otherwise none (the profile's own settings)."""
    if not backtest or backtest.get("protocol", {}).get("model_profile") != profile:
        return {}
    return {name: dict(backtest["tuning"][name]["chosen"]) for name in MODELS}


def misspecified_study(
    config: MisspecifiedConfig = MisspecifiedConfig(),
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the grid of ``config``; returns the JSON payload (cells keyed by :func:`cell_key`).

    ``params`` adds model settings on top of the profile's (``{"fashion_dna": {...}}``); Fashion DNA
    reads the attributes only (``image_dim`` 0, the stores have no images)."""
    params = {name: dict((params or {}).get(name, {})) for name in MODELS}
    params["fashion_dna"]["image_dim"] = 0
    cells: dict[str, Any] = {}
    timing: dict[str, float] = {}
    for share in config.attribute_shares:
        for strength in config.misspecified:
            tic = time.perf_counter()
            stores = []
            for store_seed in config.store_seeds:
                store_config = replace(
                    STORE_PRESETS[config.preset],
                    n_customers=config.n_customers,
                    n_weeks=config.n_weeks,
                    articles_per_week=config.articles_per_week,
                    attribute_share=share,
                    image_share=0.0,
                    image_size=0,
                    misspecified=strength,
                    seed=store_seed,
                )
                data = simulate_config(store_config, progress=False)
                stores.append(store_values(data, config, params))
            key = cell_key(share, strength)
            cells[key] = {
                "attribute_share": share,
                "misspecified": strength,
                **summarise_cell(stores, n_boot=config.n_boot, seed=config.seed),
            }
            timing[key] = round(time.perf_counter() - tic, 1)
            if progress:
                gap = cells[key]["gap_dna_lightfm_cold"]
                print(
                    f"{key}: DNA - LightFM on new articles {gap['estimate']:+.3f} "
                    f"[{gap['lo']:+.3f}, {gap['hi']:+.3f}] in {timing[key]} s",
                    flush=True,
                )
    return {
        "config": asdict(config),
        "models": list(MODELS),
        "params": params,
        "cells": cells,
        "timing_seconds": timing,
        "interval": "hierarchical bootstrap (stores, cutoffs within store, customers within cutoff)",
    }


# ---------------------------------------------------------------------- the chapter's view

#: Where the chapters' cold-start claim is measured: the attribute_share of the backtest's store.
CLAIM_SHARE = STORE_PRESETS["full"].attribute_share


def overall_claim(claims: list[str]) -> str:
    """One word for a row of cells: supported when every cell is, contradicted when any is, else
    not supported."""
    if claims and all(c == "supported" for c in claims):
        return "supported"
    if any(c == "contradicted" for c in claims):
        return "contradicted"
    return "not supported"


def share_list(shares: list[float]) -> str:
    """``"0.3, 0.5 and 0.9"``; one share alone is just its number."""
    words = [f"{share:g}" for share in shares]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" and {words[-1]}"


def _cell(result: Mapping[str, Any], share: float, strength: float) -> Mapping[str, Any] | None:
    return result["cells"].get(cell_key(share, strength))


def misspecified_glue(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The glue values of chapter 4's section on the misspecified store (``ch4_mis_*``), from the
    stored study; NaN and "not run" when there is none."""
    if result is None:
        nan = float("nan")
        values: dict[str, Any] = {f"ch4_mis_{k}": "not run" for k in ("verdict_on", "verdict_off")}
        for state in ("on", "off"):
            for name in (
                "gap",
                "gap_lo",
                "gap_hi",
                "ratio",
                "ratio_lo",
                "ratio_hi",
                "dna",
                "lightfm",
            ):
                values[f"ch4_mis_{name}_{state}"] = nan
            values[f"ch4_mis_supported_{state}"] = 0
            values[f"ch4_mis_contradicted_{state}"] = 0
        return values | {
            "ch4_mis_stores": 0,
            "ch4_mis_cutoffs": 0,
            "ch4_mis_customers": 0,
            "ch4_mis_weeks": 0,
            "ch4_mis_shares": "none",
            "ch4_mis_n_shares": 0,
            "ch4_mis_strength": nan,
            "ch4_mis_strengths": "none",
            "ch4_mis_claim_share": CLAIM_SHARE,
            "ch4_mis_claim_on": "not run",
            "ch4_mis_claim_off": "not run",
            "ch4_mis_interval": "no stored study",
            "ch4_mis_commit": "none",
        }
    config = result["config"]
    shares = list(config["attribute_shares"])
    strengths = list(config["misspecified"])
    on, off = max(strengths), min(strengths)
    values = {
        "ch4_mis_stores": len(config["store_seeds"]),
        "ch4_mis_cutoffs": config["n_cutoffs"],
        "ch4_mis_customers": config["n_customers"],
        "ch4_mis_weeks": config["n_weeks"],
        "ch4_mis_shares": share_list(shares),
        "ch4_mis_n_shares": len(shares),
        "ch4_mis_strength": on,
        "ch4_mis_strengths": share_list([x for x in strengths if x > 0]),
        "ch4_mis_claim_share": CLAIM_SHARE,
        "ch4_mis_interval": result["interval"],
        "ch4_mis_commit": str(result.get("provenance", {}).get("commit", "unknown"))[:7],
    }
    for state, strength in (("on", on), ("off", off)):
        claims = [_cell(result, share, strength)["claim"] for share in shares]
        values[f"ch4_mis_verdict_{state}"] = overall_claim(claims)
        values[f"ch4_mis_supported_{state}"] = claims.count("supported")
        values[f"ch4_mis_contradicted_{state}"] = claims.count("contradicted")
        cell = _cell(result, CLAIM_SHARE, strength) or _cell(result, shares[-1], strength)
        gap, ratio = cell["gap_dna_lightfm_cold"], cell["dna_cold_warm_ratio"]
        values |= {
            f"ch4_mis_gap_{state}": gap["estimate"],
            f"ch4_mis_gap_lo_{state}": gap["lo"],
            f"ch4_mis_gap_hi_{state}": gap["hi"],
            f"ch4_mis_claim_{state}": cell["claim"],
            f"ch4_mis_ratio_{state}": ratio["estimate"],
            f"ch4_mis_ratio_lo_{state}": ratio["lo"],
            f"ch4_mis_ratio_hi_{state}": ratio["hi"],
            f"ch4_mis_dna_{state}": cell["dna_cold"]["estimate"],
            f"ch4_mis_lightfm_{state}": cell["lightfm_cold"]["estimate"],
        }
    return values


def plot_misspecified(result: Mapping[str, Any], *, source: str | None = None):
    """Two panels over attribute_share, the models' form against the misspecified store: DNA minus
    LightFM AUC on new articles (left) and DNA's cold/warm AUC ratio (right), 95% intervals.
    ``source``, the name of the committed result ``result`` was read from (``"misspecified"``),
    puts its file, commit, machine and date in a footer (:mod:`gpa_lib.stamp`); ``None``, none."""
    import matplotlib.pyplot as plt

    config = result["config"]
    shares = np.asarray(config["attribute_shares"], dtype=float)
    figure, axes = plt.subplots(1, 2, figsize=(7, 3.2), constrained_layout=True)
    panels = (
        ("gap_dna_lightfm_cold", "AUC on new articles,\nDNA minus LightFM", 0.0),
        ("dna_cold_warm_ratio", "DNA AUC new / known", 1.0),
    )
    for ax, (key, label, line) in zip(axes, panels, strict=True):
        for i, strength in enumerate(config["misspecified"]):
            cells = [_cell(result, share, strength)[key] for share in shares]
            mean = np.array([c["estimate"] for c in cells], dtype=float)
            lo = np.array([c["lo"] for c in cells], dtype=float)
            hi = np.array([c["hi"] for c in cells], dtype=float)
            name = "models' form" if strength == 0 else f"misspecified {strength:g}"
            ax.errorbar(
                shares + (i - 0.5) * 0.015,
                mean,
                yerr=[mean - lo, hi - mean],
                marker="os^vD"[i % 5],
                capsize=3,
                label=name,
            )
        ax.axhline(line, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("attribute_share (share of latent variance)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize="small")
    return stamp_results(figure, {source: result} if source else {}, RECSYS_CODE)

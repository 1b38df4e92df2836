"""The papers' claims (:mod:`gpa_lib.recsys.eval.claims`) judged on today's committed results, and
the table and glue values that open chapters 4 and 5.

Every committed interval resamples one simulated store (seed 0): cutoffs, customers and training
seeds within it, with the tuning fixed. The p-value of each claim is read off that interval as if it
were normal (:meth:`gpa_lib.stats.Interval.normal_p`), because the files kept no replicates. The
same comparison in the other committed runs of the same store seed (a smaller store in the ablation,
the drift control) is the claim's replication. Verdicts from one store are provisional: the
multi-store study (``make studies``) is what the claims were declared for; once its
``claims_stores.json`` is committed, :mod:`gpa_lib.recsys.eval.store_verdicts` judges the claims on
it and shows these single-store results beside them as replications.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpa_lib.recsys.eval.claims import CLAIMS, Claim, Evidence, Judgement, judge
from gpa_lib.stats import Interval

#: The committed file behind each study name.
STUDY_FILES = {
    "backtest": "backtest",
    "ablation": "ablation",
    "drift": "drift",
    "dna_variants": "dna_variants",
    "style_tracking": "ch5_claims",
}
#: The studies each family reads: its claims' own and the runs that replicate them. Chapter 5's
#: style tracking is the chapter's own result (``ch5_claims.json`` of its last full run).
FAMILY_STUDIES = {
    "fashion_dna": ("backtest", "dna_variants"),
    "lstm": ("backtest", "ablation", "drift", "style_tracking"),
}
ONE_STORE = "block bootstrap within one store (cutoffs, customers, seeds)"


def _store_label(study: str, payload: Mapping[str, Any]) -> str:
    store = payload.get("store", {})
    size = f"{store['customers']:,} customers" if "customers" in store else "store seed 0"
    return f"{study} ({size})"


def _row(rows: Any, claim: Claim, **extra: Any) -> Interval | None:
    """The interval of the first row ``{"a", "b", "slice", "metric", "diff", "lo", "hi", ...}``
    that is the claim's gap (and matches ``extra``)."""
    wanted = {"a": claim.a, "b": claim.b, "slice": claim.slice, "metric": claim.metric, **extra}
    for row in rows:
        if all(row.get(k) == v for k, v in wanted.items()):
            return Interval(row["diff"], row["lo"], row["hi"], 0.95, ONE_STORE, 1)
    return None


def _comparison(payload: Mapping[str, Any], claim: Claim) -> Interval | None:
    return _row(payload.get("comparisons", ()), claim)


def _drift(payload: Mapping[str, Any], claim: Claim, drift: float) -> Interval | None:
    key = f"{claim.a}-{claim.b} {claim.metric} {claim.slice}"
    for row in payload.get("drift_sweep", ()):
        if abs(row["drift"] - drift) < 1e-9 and key in row:
            return Interval(row[key], row[f"{key} lo"], row[f"{key} hi"], 0.95, ONE_STORE, 1)
    return None


def _dna_variants(payload: Mapping[str, Any], claim: Claim) -> Interval | None:
    return _row(payload.get("image_gain", ()), claim, store="images")


def _style_tracking(payload: Mapping[str, Any], claim: Claim) -> Interval | None:
    gaps = payload.get("style_tracking", {}).get("gaps", {})
    cell = gaps.get(f"{claim.a}-{claim.b}", {}).get(claim.metric)
    if cell is None:
        return None
    n = payload["style_tracking"].get("n_heldout")
    return Interval(cell["mean"], cell["lo"], cell["hi"], 0.95, "bootstrap over customers", n)


def committed_evidence(claim: Claim, results: Mapping[str, Mapping[str, Any]]) -> Evidence:
    """The evidence for ``claim`` in the committed payloads ``results`` (``{study name: payload}``,
    the names of :data:`STUDY_FILES`): the primary interval from ``results[claim.study]``, p read
    off it as a normal interval, and as replications the same gap in every other payload that has
    it (the drift control at the primary store's drift)."""
    readers = {
        "backtest": _comparison,
        "ablation": _comparison,
        "dna_variants": _dna_variants,
        "style_tracking": _style_tracking,
    }
    if claim.study not in results:
        raise ValueError(f"results has no {claim.study!r} payload for claim {claim.name!r}")
    primary = readers[claim.study](results[claim.study], claim)
    if primary is None:
        raise ValueError(f"the {claim.study!r} results have no {claim.a} - {claim.b} row")
    drift = results[claim.study].get("store", {}).get("drift")
    replications = []
    for study, payload in results.items():
        if study == claim.study:
            continue
        if study == "drift":
            found = None if drift is None else _drift(payload, claim, drift)
            label = f"drift control at drift {drift} ({payload['store']['customers']:,} customers)"
        elif study in ("backtest", "ablation"):
            found, label = _comparison(payload, claim), _store_label(study, payload)
        else:
            found = None
        if found is not None:
            replications.append((label, found))
    method = "normal approximation to the committed interval (one store)"
    return Evidence(primary, primary.normal_p(), method, tuple(replications))


def load_committed(
    studies: tuple[str, ...] = tuple(STUDY_FILES), results_dir: Any = None
) -> dict[str, dict[str, Any]]:
    """The committed payloads of ``studies`` (names of :data:`STUDY_FILES`; missing files are
    left out)."""
    from gpa_lib.results import RESULTS_DIR, read_result

    out = {}
    for study in studies:
        name = STUDY_FILES[study]
        try:
            out[study] = read_result(name, RESULTS_DIR if results_dir is None else results_dir)
        except FileNotFoundError:
            continue
    return out


def committed_verdicts(
    paper: str, results: Mapping[str, Mapping[str, Any]] | None = None, *, alpha: float = 0.05
) -> list[Judgement]:
    """The family ``paper`` of :data:`CLAIMS` judged on the committed results."""
    results = load_committed(FAMILY_STUDIES[paper]) if results is None else results
    claims = CLAIMS[paper]
    return judge(claims, {c.name: committed_evidence(c, results) for c in claims}, alpha=alpha)


def verdict_table(judgements: list[Judgement], digits: int = 3):
    """One row per claim: the claim, the verdict, the gap with its interval, p and Holm p, and the
    same gap in the other runs."""
    import pandas as pd

    rows = []
    for j in judgements:
        c, ev = j.claim, j.evidence
        rows.append(
            {
                "claim": c.text,
                "verdict": j.verdict,
                "gap (95% interval)": f"{c.a} - {c.b}, {c.metric} ({c.slice}): "
                + ev.interval.text(digits),
                "p (Holm)": f"{p_text(ev.p_value)} ({p_text(j.p_holm)})",
                "other runs of the same store seed": "; ".join(
                    f"{run}: {i.text(digits)}" for run, i in ev.replications
                )
                or "none",
            }
        )
    return pd.DataFrame(rows).set_index("claim")


def p_text(p: float) -> str:
    """A p-value for a table: two digits, or "<0.0001" (normal tails that far out mean nothing)."""
    return "<0.0001" if p < 1e-4 else f"{p:.2g}"


def context_glue(prefix: str, ablation: Mapping[str, Any]) -> dict[str, float]:
    """How much of the LSTM's lead over Fashion DNA on known articles is personal, from the
    ablation: the AUC (known articles) of the paper's LSTM (no article context) and of Fashion DNA,
    the gap of ours over the paper's (the context term) and over Fashion DNA, and ours against the
    non-personal model with the same article features. Keys ``{prefix}_ctx_*``."""
    summary = ablation["summary"]

    def gap(a: str, b: str) -> dict[str, float]:
        found = _comparison(ablation, Claim("g", "lstm", "", a, b, "warm", "auc", 1, "ablation"))
        if found is None:
            raise ValueError(f"the ablation has no {a} - {b} row on known-article AUC")
        return {"": found.estimate, "_lo": found.lo, "_hi": found.hi}

    out = {
        f"{prefix}_ctx_paper_auc": summary["lstm_paper"]["warm/auc"]["mean"],
        f"{prefix}_ctx_dna_auc": summary["fashion_dna"]["warm/auc"]["mean"],
        f"{prefix}_ctx_ours_auc": summary["lstm"]["warm/auc"]["mean"],
        f"{prefix}_ctx_nonpersonal_auc": summary["context_popularity"]["warm/auc"]["mean"],
    }
    for name, (a, b) in {
        "context": ("lstm", "lstm_paper"),
        "over_dna": ("lstm", "fashion_dna"),
        "personal": ("lstm", "context_popularity"),
    }.items():
        out |= {f"{prefix}_ctx_{name}{end}": v for end, v in gap(a, b).items()}
    return out


def verdict_glue(prefix: str, judgements: list[Judgement]) -> dict[str, Any]:
    """``{prefix}_{claim}_verdict`` (the word), ``_gap``, ``_lo``, ``_hi`` (floats), ``_text``
    ("+0.009 [+0.001, +0.016]"), ``_p`` and ``_p_holm`` for every claim, and ``_others``: the same
    gap in the other runs in words ("none" when there is none)."""
    out: dict[str, Any] = {}
    for j in judgements:
        key, i = f"{prefix}_{j.claim.name}", j.evidence.interval
        out[f"{key}_verdict"] = j.verdict
        out[f"{key}_gap"], out[f"{key}_lo"], out[f"{key}_hi"] = i.estimate, i.lo, i.hi
        out[f"{key}_text"] = i.text(3)
        out[f"{key}_p"], out[f"{key}_p_holm"] = j.evidence.p_value, j.p_holm
        out[f"{key}_others"] = (
            "; ".join(f"{run}: {i.text(3)}" for run, i in j.evidence.replications) or "none"
        )
    return out


def tracking_glue(prefix: str, claims_payload: Mapping[str, Any]) -> dict[str, float]:
    """R² and cosine of the LSTM's and Fashion DNA's styles against the true current style, from a
    committed ``ch5_claims.json``: keys ``{prefix}_trk_{lstm|dna}_{r2|cosine}``."""
    models = claims_payload["style_tracking"]["models"]
    return {
        f"{prefix}_trk_{short}_{metric}": models[name][metric]["mean"]
        for short, name in (("lstm", "lstm"), ("dna", "fashion_dna"))
        for metric in ("r2", "cosine")
    }

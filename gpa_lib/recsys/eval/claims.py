"""The papers' claims as primary comparisons, declared before the multi-store study runs, and their
verdicts with Holm's adjustment within each paper's family.

:data:`CLAIMS` holds one family per paper: each :class:`Claim` names two models, a slice of the
candidates, a metric and the direction the paper asserts, and the study that measures it. Every
other comparison a study reports is exploratory (:func:`label_exploratory`): it may be shown, never
called significant.

:func:`judge` takes one :class:`Evidence` per claim (an interval, a two-sided p-value and the method
behind it, and the same comparison in other runs) and returns a :class:`Judgement` per claim with
the Holm-adjusted p-value and the verdict word. Evidence comes from a multi-store study
(:func:`evidence_from_bootstrap`: the hierarchical bootstrap of :mod:`gpa_lib.stats`, p from its
replicates or from sign flips over stores) or from today's committed single-store results
(:func:`committed_evidence`: p read off the committed interval as a normal one, since those files
kept no replicates).

Note on timing: the claims below were written down after the committed single-store results
existed, so the verdicts on them are not confirmatory; the multi-store study is the first run they
were declared for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpa_lib.stats import HierarchicalBootstrap, Interval, bootstrap_p, holm, sign_flip_p

#: The three verdict words.
VERDICTS = ("supported", "not supported", "contradicted")


@dataclass(frozen=True)
class Claim:
    """One primary comparison: the gap ``a - b`` of ``metric`` on ``slice`` in ``study``."""

    name: str  # a short key (glue keys and tables use it)
    paper: str  # the family: "fashion_dna" (arXiv 1609.02489) or "lstm" (arXiv 1708.07347)
    text: str  # the claim in words, as the chapter states it
    a: str  # the model the paper says is better (direction +1) or worse (-1)
    b: str  # the model it is compared with
    slice: str  # candidates: "all", "cold" (new articles) or "warm" (known articles)
    metric: str  # "auc", "map@12", ... or "cosine" (style tracking)
    direction: int  # +1: the paper asserts a > b; -1: a < b
    study: str  # what measures it: "backtest", "ablation", "dna_variants" or "style_tracking"

    def __post_init__(self) -> None:
        if self.direction not in (1, -1):
            raise ValueError(f"direction={self.direction} must be +1 or -1")
        if self.slice not in ("all", "cold", "warm"):
            raise ValueError(f"slice={self.slice!r} must be 'all', 'cold' or 'warm'")


#: One family per paper; Holm's adjustment runs within a family.
CLAIMS: dict[str, tuple[Claim, ...]] = {
    "fashion_dna": (
        Claim(
            "dna_cold_start",
            "fashion_dna",
            "Fashion DNA ranks new articles better than a feature model (LightFM)",
            "fashion_dna", "lightfm", "cold", "auc", 1, "backtest",
        ),
        Claim(
            "dna_image_gain",
            "fashion_dna",
            "the image adds to the tags (DNA from tags and image against tags only)",
            "both", "tags", "all", "auc", 1, "dna_variants",
        ),
    ),
    "lstm": (
        Claim(
            "lstm_vs_static_cf",
            "lstm",
            "the LSTM beats static CF on known articles",
            "lstm", "static_cf", "warm", "auc", 1, "backtest",
        ),
        Claim(
            "lstm_vs_dna",
            "lstm",
            "the LSTM beats Fashion DNA (one static style in the same DNA space) on known articles",
            "lstm", "fashion_dna", "warm", "auc", 1, "backtest",
        ),
        Claim(
            "lstm_vs_popularity",
            "lstm",
            "the LSTM beats popularity",
            "lstm", "popularity", "all", "map@12", 1, "backtest",
        ),
        Claim(
            "lstm_personal",
            "lstm",
            "the LSTM's lead is personal: it beats a non-personal model with the same article "
            "features on known articles",
            "lstm", "context_popularity", "warm", "auc", 1, "ablation",
        ),
        Claim(
            "lstm_tracks_style",
            "lstm",
            "the LSTM's style is closer to the customer's true current style than the static one",
            "lstm", "fashion_dna", "all", "cosine", 1, "style_tracking",
        ),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Evidence:
    """What one claim is judged on."""

    interval: Interval  # the gap a - b and its interval
    p_value: float  # two-sided p of "the gap is 0"
    p_method: str  # how p was computed
    replications: tuple[tuple[str, Interval], ...] = ()  # (run, interval) of the same gap elsewhere


@dataclass(frozen=True)
class Judgement:
    claim: Claim
    evidence: Evidence
    p_holm: float  # Holm-adjusted within the claim's family
    verdict: str  # one of VERDICTS
    reason: str  # one sentence: why this word

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim.name,
            "paper": self.claim.paper,
            "text": self.claim.text,
            "comparison": f"{self.claim.a} - {self.claim.b}",
            "slice": self.claim.slice,
            "metric": self.claim.metric,
            "direction": self.claim.direction,
            "study": self.claim.study,
            "interval": self.evidence.interval.to_dict(),
            "p": self.evidence.p_value,
            "p_method": self.evidence.p_method,
            "p_holm": float(self.p_holm),
            "verdict": self.verdict,
            "reason": self.reason,
            "replications": [
                {"run": run, "interval": i.to_dict()} for run, i in self.evidence.replications
            ],
        }


def judge(
    claims: Sequence[Claim], evidence: Mapping[str, Evidence], *, alpha: float = 0.05
) -> list[Judgement]:
    """The verdict on each claim of one family, by this rule:

    1. The p-values of the claims (``evidence[claim.name].p_value``) are Holm-adjusted together.
    2. **contradicted**: Holm-adjusted p <= ``alpha`` and the estimate lies on the side opposite to
       the claim's direction.
    3. **supported**: Holm-adjusted p <= ``alpha``, the estimate lies on the claimed side, and no
       replication (the same gap in another run, ``evidence.replications``) has an interval that
       excludes 0 on the opposite side.
    4. **not supported**: everything else, including a significant primary result that another run
       contradicts.

    Every claim of the family must have evidence (``ValueError`` names the missing ones).
    """
    missing = [c.name for c in claims if c.name not in evidence]
    if missing:
        raise ValueError(f"evidence has no entry for claim(s) {missing}")
    p_holm = holm([evidence[c.name].p_value for c in claims])
    out = []
    for claim, adjusted in zip(claims, p_holm, strict=True):
        ev = evidence[claim.name]
        sign = np.sign(ev.interval.estimate)
        against = [
            run
            for run, i in ev.replications
            if (claim.direction > 0 and i.hi < 0) or (claim.direction < 0 and i.lo > 0)
        ]
        if adjusted <= alpha and sign == -claim.direction:
            word, why = "contradicted", f"Holm p {adjusted:.2g} <= {alpha}, opposite direction"
        elif adjusted <= alpha and sign == claim.direction and not against:
            word, why = "supported", f"Holm p {adjusted:.2g} <= {alpha}, claimed direction"
        elif adjusted <= alpha and against:
            word = "not supported"
            why = f"Holm p {adjusted:.2g} <= {alpha}, but {', '.join(against)} points the other way"
        else:
            word, why = "not supported", f"Holm p {adjusted:.2g} > {alpha}"
        out.append(Judgement(claim, ev, float(adjusted), word, why))
    return out


def evidence_from_bootstrap(
    boot: HierarchicalBootstrap, claim: Claim, *, p_method: str = "bootstrap", seed: int = 0
) -> Evidence:
    """Evidence from a multi-store study: the hierarchical interval of the gap on the keys
    ``(model, slice, metric)``, and p from the bootstrap replicates (``p_method="bootstrap"``) or
    from sign flips of the per-store gaps (``"sign_flip"``; see :func:`gpa_lib.stats.sign_flip_p`
    for its floor with few stores)."""
    a, b = (claim.a, claim.slice, claim.metric), (claim.b, claim.slice, claim.metric)
    if p_method == "bootstrap":
        p = bootstrap_p(boot.gap_replicates(a, b))
        how = f"hierarchical bootstrap over {boot.n_stores} store(s)"
    elif p_method == "sign_flip":
        p = sign_flip_p(boot.store_gaps(a, b), seed=seed)
        how = f"sign flips of the {boot.n_stores} per-store gaps"
    else:
        raise ValueError(f"p_method={p_method!r} must be 'bootstrap' or 'sign_flip'")
    return Evidence(boot.gap(a, b), p, how)


def evidence_from_store_gaps(
    store_gaps: np.ndarray,
    *,
    p_method: str = "sign_flip",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Evidence:
    """Evidence from paired estimates alone, one per independent unit (a store, or a cutoff):
    their mean, a percentile bootstrap interval over the units, and p from sign flips of the units
    (``"sign_flip"``, the default) or from the bootstrap replicates (``"bootstrap"``). For when
    only per-unit summaries exist; with per-customer values use :func:`evidence_from_bootstrap`."""
    gaps = np.asarray(store_gaps, dtype=np.float64)
    gaps = gaps[np.isfinite(gaps)]
    if not gaps.size:
        raise ValueError("store_gaps has no finite value")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(gaps.size, np.full(gaps.size, 1 / gaps.size), size=n_boot)
    replicates = weights @ gaps / gaps.size  # (n_boot,)
    method = f"bootstrap over {gaps.size} unit(s)"
    interval = Interval.from_replicates(
        float(gaps.mean()), replicates, level=level, method=method, n=int(gaps.size)
    )
    if p_method == "sign_flip":
        return Evidence(interval, sign_flip_p(gaps, seed=seed), f"sign flips of {gaps.size} units")
    if p_method == "bootstrap":
        return Evidence(interval, bootstrap_p(replicates), method)
    raise ValueError(f"p_method={p_method!r} must be 'bootstrap' or 'sign_flip'")


def label_exploratory(rows: Iterable[Mapping[str, Any]], claims: Iterable[Claim]) -> list[dict]:
    """The comparison rows (``{"a", "b", "slice", "metric", ...}``) with ``"primary"``: the name of
    the claim the row is, or ``None``, and ``"exploratory"``: True for every row that is no claim."""
    index = {(c.a, c.b, c.slice, c.metric): c.name for c in claims}
    out = []
    for row in rows:
        name = index.get((row["a"], row["b"], row["slice"], row["metric"]))
        out.append({**row, "primary": name, "exploratory": name is None})
    return out

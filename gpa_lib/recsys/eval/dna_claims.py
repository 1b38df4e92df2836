"""Chapter 4's tests of the Fashion DNA paper's claims on simulated data with known truth.

- :func:`purchase_calibration`: is ``sigmoid(style . DNA + b)`` a purchase probability? Log-loss and
  a reliability table on one test window, raw and after a two-parameter (Platt) recalibration
  fitted on half of the customers, next to popularity recalibrated the same way.
- :func:`angle_agreement`: is the angle between DNA vectors the angle between the true latents?
  Spearman rank correlation over article pairs and agreement of nearest neighbours.
- :func:`matched_outside_gap`: customers outside the network's training sample against training
  customers with the same number of past orders (exact matching on activity).

Every interval is a 95% bootstrap over customers (or articles), as the docstrings say.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpa_lib.stats import TAILS_95, Interval, bootstrap_draws, paired_bootstrap

#: How the intervals here are made (``Interval.method``); every one is read at :data:`TAILS_95`.
CUSTOMER_BOOTSTRAP = "percentile bootstrap over held-out customers"
ARTICLE_BOOTSTRAP = "percentile bootstrap over articles"
STRATIFIED_BOOTSTRAP = "percentile bootstrap over customers within order-count strata"


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def _platt(features: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """``(a, b)`` maximising the likelihood of ``sigmoid(features @ a + b)``; ``features`` (N, F)
    (scikit-learn's L-BFGS, a negligible penalty)."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=500).fit(features, y.astype(int))
    return fit.coef_[0].astype(np.float64), float(fit.intercept_[0])


def purchase_calibration(
    logits: dict[str, np.ndarray],
    relevant: np.ndarray,
    *,
    raw: tuple[str, ...] = (),
    gaps: tuple[tuple[str, str], ...] = (),
    n_bins: int = 10,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Log-loss and reliability of purchase probabilities on one window.

    ``logits[name]``: ``(n_customers, n_candidates)`` scores on the logit scale, or
    ``(n_customers, n_candidates, F)`` features; ``relevant``: bool, bought in the window. Each model
    is recalibrated by ``sigmoid(features @ a + b)`` (one feature: ``a * logit + b``) fitted on a random
    half of the customers and scored on the other half; models in ``raw`` are also scored as they
    are (``sigmoid(logit)``). Returns ``{"models": {label: {"log_loss": {mean, lo, hi}, "bins":
    [{"predicted", "observed", "pairs"}], "platt": [a, b]}}, "gaps", "base_rate", "n_heldout"}``;
    the bins are quantile bins of the predicted probability over held-out pairs. ``gaps`` names
    pairs of those labels (``"DNA (recalibrated)"``): ``out["gaps"]`` holds ``{"a", "b", "diff",
    "lo", "hi"}`` of the mean log-loss ``a - b``, paired (the same customer draws for both).
    """
    rng = np.random.default_rng(seed)
    n_customers = relevant.shape[0]
    order = rng.permutation(n_customers)
    fit, held = np.sort(order[: n_customers // 2]), np.sort(order[n_customers // 2 :])
    y_fit, y_held = relevant[fit].ravel().astype(np.float64), relevant[held].astype(np.float64)
    variants = {f"{name} (raw)": (name, None) for name in raw}
    variants |= {f"{name} (recalibrated)": (name, "platt") for name in logits}
    draws = bootstrap_draws(len(held), n_boot, rng)  # the same customer draws for every model
    out: dict[str, Any] = {}
    losses: dict[str, np.ndarray] = {}
    for label, (name, how) in variants.items():
        z = np.nan_to_num(np.asarray(logits[name], dtype=np.float64), neginf=-30.0)
        z = z if z.ndim == 3 else z[..., None]  # (n_customers, n_candidates, F)
        if how:
            a, b = _platt(z[fit].reshape(-1, z.shape[-1]), y_fit)
        else:
            a, b = np.ones(z.shape[-1]), 0.0
        p = 1 / (1 + np.exp(-(z[held] @ a + b)))  # (n_held, n_candidates)
        per_customer = np.array([_log_loss(p[i], y_held[i]) for i in range(len(held))])
        losses[label] = per_customer
        flat_p, flat_y = p.ravel(), y_held.ravel()
        edges = np.unique(np.quantile(flat_p, np.linspace(0, 1, n_bins + 1)))
        which = np.clip(np.searchsorted(edges, flat_p, side="right") - 1, 0, len(edges) - 2)
        bins = [
            {
                "predicted": float(flat_p[which == k].mean()),
                "observed": float(flat_y[which == k].mean()),
                "pairs": int((which == k).sum()),
            }
            for k in range(len(edges) - 1)
            if (which == k).any()
        ]
        log_loss = _customer_mean(per_customer, draws)
        out[label] = {
            "log_loss": log_loss.to_mean_dict(),
            "bins": bins,
            "platt": [*map(float, a), b],
        }
    paired = []
    for a, b in gaps:
        missing = [x for x in (a, b) if x not in losses]
        if missing:
            raise ValueError(f"gaps name {missing}, which are not among {sorted(losses)}")
        gap = _customer_mean(losses[a] - losses[b], draws)
        paired.append({"a": a, "b": b, "diff": gap.estimate, "lo": gap.lo, "hi": gap.hi})
    return {
        "models": out,
        "gaps": paired,
        "base_rate": float(y_held.mean()),
        "n_heldout": int(len(held)),
    }


def _customer_mean(per_customer: np.ndarray, draws: list[np.ndarray]) -> Interval:
    """Mean of ``per_customer`` ``(n_held,)`` with its interval over the customer ``draws``."""
    return paired_bootstrap(
        lambda d: per_customer[d].mean(),
        len(per_customer),
        draws,
        quantiles=TAILS_95,
        method=CUSTOMER_BOOTSTRAP,
    )


def plot_reliability(calibration: dict[str, Any], ax=None):
    """Observed purchase rate against predicted probability (log-log), one line per model."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5), constrained_layout=True)
    lows = []
    for label, entry in calibration["models"].items():
        predicted = [b["predicted"] for b in entry["bins"]]
        observed = [b["observed"] for b in entry["bins"]]
        ax.plot(predicted, observed, "o-", ms=4, label=label)
        lows += [v for v in predicted + observed if v > 0]
    low = max(min(lows), 1e-6)
    ax.plot([low, 1], [low, 1], color="k", lw=0.8, ls="--", label="calibrated")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted purchase probability (customer x article, test window)")
    ax.set_ylabel("observed purchase rate in the bin")
    ax.legend(fontsize="small")
    return ax.figure


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def angle_agreement(
    dna: np.ndarray,
    latent: np.ndarray,
    *,
    n_neighbours: int = 10,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Does the DNA angle order article pairs like the true latent angle does?

    ``dna`` ``(N, D)`` and ``latent`` ``(N, D_true)`` of the same ``N`` articles. Returns the Spearman
    correlation of the two angles over all pairs (interval: bootstrap over articles, pairs of the
    drawn articles), and the mean share of each article's ``n_neighbours`` nearest by DNA angle that
    are among its ``n_neighbours`` nearest by true angle (interval over articles), with the share
    expected by chance, ``n_neighbours / (N - 1)``.
    """
    rng = np.random.default_rng(seed)
    cos_dna = _unit(dna.astype(np.float64)) @ _unit(dna.astype(np.float64)).T  # (N, N)
    cos_true = _unit(latent.astype(np.float64)) @ _unit(latent.astype(np.float64)).T
    n = len(dna)
    upper = np.triu_indices(n, 1)
    rho = _spearman(cos_dna[upper], cos_true[upper])
    reps = []
    for _ in range(n_boot):
        pick = np.unique(rng.integers(0, n, n))
        sub = np.triu_indices(len(pick), 1)
        reps.append(_spearman(cos_dna[np.ix_(pick, pick)][sub], cos_true[np.ix_(pick, pick)][sub]))
    np.fill_diagonal(cos_dna, -np.inf)
    np.fill_diagonal(cos_true, -np.inf)
    near_dna = np.argsort(-cos_dna, axis=1)[:, :n_neighbours]
    near_true = np.argsort(-cos_true, axis=1)[:, :n_neighbours]
    overlap = np.array(
        [len(np.intersect1d(a, b)) / n_neighbours for a, b in zip(near_dna, near_true, strict=True)]
    )
    spearman = Interval.from_replicates(
        rho, np.array(reps), method=ARTICLE_BOOTSTRAP, n=n, quantiles=TAILS_95
    )
    neighbour_overlap = paired_bootstrap(
        lambda d: overlap[d].mean(),
        n,
        bootstrap_draws(n, n_boot, rng),
        quantiles=TAILS_95,
        method=ARTICLE_BOOTSTRAP,
    )
    return {
        "articles": n,
        "spearman": spearman.to_mean_dict(),
        "neighbour_overlap": neighbour_overlap.to_mean_dict(),
        "neighbour_chance": n_neighbours / (n - 1),
        "n_neighbours": n_neighbours,
    }


def matched_outside_gap(
    values: np.ndarray,
    in_training: np.ndarray,
    past_orders: np.ndarray,
    *,
    n_boot: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean per-customer ``values`` (e.g. AUC) of customers outside training minus that of training
    customers with the same number of past orders, weighted by the outside customers per stratum
    (strata: every order count with customers on both sides). Interval: bootstrap over customers
    within each stratum. Returns ``{"gap", "outside", "inside_matched": {mean, lo, hi}, ...}``."""
    rng = np.random.default_rng(seed)
    ok = np.isfinite(values)
    values, in_training, past_orders = values[ok], in_training[ok], past_orders[ok]
    strata = [
        k
        for k in np.unique(past_orders)
        if ((past_orders == k) & in_training).any() and ((past_orders == k) & ~in_training).any()
    ]
    groups = [
        (values[(past_orders == k) & ~in_training], values[(past_orders == k) & in_training])
        for k in strata
    ]
    weights = np.array([len(out) for out, _ in groups], dtype=np.float64)
    weights /= weights.sum()

    def stats(pairs) -> tuple[float, float]:
        outside = sum(w * o.mean() for w, (o, _) in zip(weights, pairs, strict=True))
        inside = sum(w * i.mean() for w, (_, i) in zip(weights, pairs, strict=True))
        return outside, inside

    outside, inside = stats(groups)
    reps = np.array(
        [
            stats(
                [
                    (o[rng.integers(0, len(o), len(o))], i[rng.integers(0, len(i), len(i))])
                    for o, i in groups
                ]
            )
            for _ in range(n_boot)
        ]
    )  # (n_boot, 2)

    def interval(estimate: float, replicates: np.ndarray) -> dict[str, float]:
        return Interval.from_replicates(
            estimate,
            replicates,
            method=STRATIFIED_BOOTSTRAP,
            n=int(sum(len(o) + len(i) for o, i in groups)),
            quantiles=TAILS_95,
        ).to_mean_dict()

    return {
        "gap": interval(outside - inside, reps[:, 0] - reps[:, 1]),
        "outside": interval(outside, reps[:, 0]),
        "inside_matched": interval(inside, reps[:, 1]),
        "n_outside": int(sum(len(o) for o, _ in groups)),
        "n_inside": int(sum(len(i) for _, i in groups)),
        "strata": len(strata),
        "dropped_outside": int((~in_training).sum() - sum(len(o) for o, _ in groups)),
    }

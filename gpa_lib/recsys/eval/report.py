"""What the chapters glue: intervals and verdicts in words, computed here so notebooks only call.

Every function returns plain values (``{glue key: value}`` dicts or strings); chapters hand such a
dict to ``myst_nb.glue`` with :func:`gpa_lib.glue.glue_all`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def verdict(lo: float, hi: float) -> str:
    """Where an interval ``[lo, hi]`` of a gap lies relative to zero, in words."""
    if lo > 0:
        return "above zero"
    if hi < 0:
        return "below zero"
    return "includes zero"


def interval_glue(key: str, stats: Mapping[str, Any], value: str = "diff") -> dict[str, float]:
    """``{key: stats[value], key_lo: stats["lo"], key_hi: stats["hi"]}`` as floats."""
    return {
        key: float(stats[value]),
        f"{key}_lo": float(stats["lo"]),
        f"{key}_hi": float(stats["hi"]),
    }


#: The code the numbers of a recommendation study depend on: a figure drawn from a committed study
#: says whether it changed since the study's commit (:func:`gpa_lib.stamp.stamp_provenance`).
RECSYS_CODE = ("gpa_lib/recsys",)


# ---------------------------------------------------------------------- the backtest JSON

#: How the chapters name models and slices.
MODEL_LABELS = {
    "popularity": "popularity",
    "static_cf": "static CF",
    "implicit_als": "implicit ALS",
    "implicit_bpr": "implicit BPR",
    "lightfm": "LightFM",
    "fashion_dna": "Fashion DNA",
    "lstm": "LSTM",
    "sasrec": "SASRec",
    "lstm_paper": "LSTM, paper's (no article context)",
    "sasrec_catalogue": "SASRec, catalogue softmax",
    "context_popularity": "non-personal, same article features",
    "static_cf_dna": "static CF + DNA cold start",
    "oracle": "oracle (true state)",
}
SLICE_LABELS = {"all": "all", "cold": "new", "warm": "known"}
SLICE_ORDER = ("all", "cold", "warm")


def load_backtest(results_dir: Any = None) -> dict[str, Any]:
    """The committed ``data/results/backtest.json`` (or the one under ``results_dir``)."""
    from gpa_lib.results import RESULTS_DIR, read_result

    return read_result("backtest", RESULTS_DIR if results_dir is None else results_dir)


def load_study(name: str, results_dir: Any = None) -> dict[str, Any]:
    """A committed benchmark JSON of ``data/results`` (``ablation``, ``drift``, ...)."""
    from gpa_lib.results import RESULTS_DIR, read_result

    return read_result(name, RESULTS_DIR if results_dir is None else results_dir)


def drift_glue(prefix: str, rows: list[Mapping[str, Any]], key: str, digits: int = 3) -> dict:
    """Glue values of one gap column ``key`` of the drift study: at the first and the last drift
    (value, interval, verdict), a sentence listing every drift, and whether the gap grows with
    drift (each step up in drift gives a larger mean gap)."""
    first, last = rows[0], rows[-1]
    values = [float(r[key]) for r in rows]
    out = {
        f"{prefix}_drift_first": float(first["drift"]),
        f"{prefix}_drift_last": float(last["drift"]),
    }
    for tag, row in (("first", first), ("last", last)):
        out |= interval_glue(
            f"{prefix}_{tag}", {"diff": row[key], "lo": row[f"{key} lo"], "hi": row[f"{key} hi"]}
        )
        out[f"{prefix}_{tag}_verdict"] = verdict(row[f"{key} lo"], row[f"{key} hi"])
    out[f"{prefix}_all"] = "; ".join(
        f"{r['drift']:g}: {r[key]:.{digits}f} ({r[key + ' lo']:.{digits}f} to {r[key + ' hi']:.{digits}f})"
        for r in rows
    )
    grows = all(b > a for a, b in zip(values[:-1], values[1:], strict=False))
    out[f"{prefix}_grows"] = "grows at every step" if grows else "does not grow at every step"
    zero_first = first[f"{key} lo"] <= 0 <= first[f"{key} hi"]
    out[f"{prefix}_story"] = (
        "holds"
        if zero_first and grows
        else "does not hold ("
        + ("not zero at the first drift" if not zero_first else "")
        + (", " if not zero_first and not grows else "")
        + ("not growing at every step" if not grows else "")
        + ")"
    )
    return out


def _cell(stats: Mapping[str, float], digits: int, scale: float = 1.0) -> str:
    mean, lo, hi = (scale * stats[k] for k in ("mean", "lo", "hi"))
    if mean != mean:  # NaN
        return "n/a"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def summary_table(payload: Mapping[str, Any], metric: str = "auc", digits: int = 3):
    """One row per model, one "mean [lo, hi]" column per slice (all, new, known)."""
    import pandas as pd

    rows = {
        MODEL_LABELS.get(m, m): {
            f"{metric} {SLICE_LABELS[s]}": _cell(payload["summary"][m][f"{s}/{metric}"], digits)
            for s in SLICE_ORDER
        }
        for m in payload["models"]
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def share_table(payload: Mapping[str, Any], metric: str = "auc"):
    """Each model's share (%) of the oracle-minus-popularity gap, per slice, with intervals."""
    import pandas as pd

    rows = {
        MODEL_LABELS.get(m, m): {
            f"{metric} {SLICE_LABELS[s]}": _cell(shares[f"{s}/{metric}"], 0, scale=100.0)
            for s in SLICE_ORDER
        }
        for m, shares in payload["oracle_share"].items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def tuning_table(payload: Mapping[str, Any]):
    """The setting each model chose on the validation cutoff, its score there, and the budget."""
    import pandas as pd

    metric = payload["protocol"]["tune_metric"]
    rows = {}
    for m, tuning in payload["tuning"].items():
        if "skipped" in tuning:
            rows[MODEL_LABELS.get(m, m)] = {"chosen setting": f"skipped: {tuning['skipped']}"}
            continue
        values = [t["value"] for t in tuning["trials"]]
        rows[MODEL_LABELS.get(m, m)] = {
            "settings tried": len(values),
            "chosen setting": ", ".join(f"{k}={v}" for k, v in tuning["chosen"].items()),
            f"validation {metric} (chosen)": round(max(values), 4),
            f"validation {metric} (worst)": round(min(values), 4),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def windows_table(payload: Mapping[str, Any]):
    """The test windows: candidates on sale, how many are new, how many sold at all."""
    import pandas as pd

    frame = pd.DataFrame(payload["windows"]).set_index("cutoff")
    frame["candidates that sold (%)"] = 100 * frame["candidates_sold"] / frame["candidates"]
    return frame.rename(
        columns={
            "end": "test window ends",
            "buyers": "buyers of candidates",
            "customers": "customers evaluated",
            "cold_candidates": "new candidates",
            "items_outside_candidates": "items sold outside the candidates",
        }
    ).drop(columns=["candidate_rule", "candidates_sold"])


def gap(payload: Mapping[str, Any], a: str, b: str, metric: str, slice_: str) -> dict[str, Any]:
    """The block-bootstrap gap ``a - b`` of the JSON's comparisons."""
    for row in payload["comparisons"]:
        if (row["a"], row["b"], row["metric"], row["slice"]) == (a, b, metric, slice_):
            return row
    raise ValueError(f"no comparison {a} - {b} on {metric} ({slice_}) in the results")


def gap_sentence(row: Mapping[str, Any], digits: int = 3) -> str:
    """ "X is ahead of Y by d METRIC (interval lo to hi)", or behind, or level, in words."""
    a, b = MODEL_LABELS.get(row["a"], row["a"]), MODEL_LABELS.get(row["b"], row["b"])
    metric = row["metric"].upper()
    span = f"{row['lo']:.{digits}f} to {row['hi']:.{digits}f}"
    if row["lo"] > 0:
        return f"{a} is ahead of {b} by {row['diff']:.{digits}f} {metric} (interval {span})"
    if row["hi"] < 0:
        return f"{a} is behind {b} by {-row['diff']:.{digits}f} {metric} (interval {span})"
    return (
        f"{a} and {b} are not separated: the gap is {row['diff']:.{digits}f} {metric} "
        f"(interval {span}, which includes zero)"
    )


def gap_glue(
    payload: Mapping[str, Any], prefix: str, gaps: Mapping[str, tuple[str, str, str, str]]
) -> dict[str, Any]:
    """Glue values of named gaps ``{key: (a, b, metric, slice)}``: ``{prefix}_{key}`` is the
    :func:`gap_sentence` (4 digits but for AUC), ``{prefix}_gap_{key}`` (``_lo``, ``_hi``) its
    interval."""
    out: dict[str, Any] = {}
    for key, (a, b, metric, slice_) in gaps.items():
        row = gap(payload, a, b, metric, slice_)
        out[f"{prefix}_{key}"] = gap_sentence(row, digits=4 if metric != "auc" else 3)
        out |= interval_glue(f"{prefix}_gap_{key}", row)
    return out


def best_model(payload: Mapping[str, Any], metric: str, slice_: str, exclude=("oracle",)) -> str:
    """The label of the model with the highest mean ``metric`` on ``slice_`` (oracle left out)."""
    scores = {
        m: payload["summary"][m][f"{slice_}/{metric}"]["mean"]
        for m in payload["models"]
        if m not in exclude
    }
    return MODEL_LABELS.get(max(scores, key=scores.get), "")


def compare_word(
    a: float, b: float, higher: str = "higher", lower: str = "lower", same: str = "the same"
) -> str:
    """``higher`` when ``a > b``, ``lower`` when ``a < b`` (at 3 decimals), else ``same``."""
    a, b = round(float(a), 3), round(float(b), 3)
    return higher if a > b else lower if a < b else same


def overlap_verdict(a: Mapping[str, float], b: Mapping[str, float]) -> str:
    """Whether two intervals ``{"lo", "hi"}`` overlap, in words."""
    if a["lo"] > b["hi"]:
        return "the first interval lies above the second"
    if a["hi"] < b["lo"]:
        return "the first interval lies below the second"
    return "the intervals overlap"


def segment_leaders(payload: Mapping[str, Any], exclude=("oracle",)) -> dict[str, str]:
    """``{orders group: label of the model with the highest mean AUC there}`` (oracle left out)."""
    segments = payload["segments_auc"]
    models = [m for m in payload["models"] if m not in exclude]
    return {
        label: MODEL_LABELS.get(best, best)
        for label in segments["customers"]
        for best in [max(models, key=lambda m, label=label: segments[m][label])]
    }

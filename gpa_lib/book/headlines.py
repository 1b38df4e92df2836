"""The book's results on one screen: each paper's claims, what the chapters measured, and their
verdicts, read from the values the chapters glued in this run.

:data:`HEADLINES` declares the rows: the claim as the paper makes it, a sentence template over the
chapter's glue keys (``{ch1_mass_image:.2f}``), the glue key holding the chapter's verdict word
where the chapter states one, and the section it links to. :func:`headline_table` fills them from
the executed notebooks of a run (:func:`gpa_lib.book.glue.glued_values`), so the intro page
(``book/intro.py``, run after the chapters) cannot disagree with the chapters it summarises.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gpa_lib.book.glue import glued_values

#: What a cell shows when a key it needs was not glued in this run (a chapter failed or was skipped).
MISSING = "not in this run"


@dataclass(frozen=True)
class Headline:
    """One row: a claim of a paper and where the book answers it."""

    paper: str  # the paper, short
    claim: str  # the claim in words
    measured: str  # a template over glue keys: "{ch1_mass_image:.2f} of the mass"
    chapter: str  # the executed notebook's name, e.g. "01_gpa_complexity"
    anchor: str  # the section's label in that chapter, e.g. "ch1-quality"
    verdict: str | None = None  # the glue key of the chapter's verdict word, if it states one

    def keys(self) -> list[str]:
        """The glue keys this row reads."""
        fields = [f for _, f, _, _ in string.Formatter().parse(self.measured) if f]
        return fields + ([self.verdict] if self.verdict else [])


GPA = "Grid Partitioned Attention"
POSE = "Pose morphing (GPA paper)"
DNA = "Fashion DNA"
LSTM = "LSTM customer model"

#: The rows of the intro's table, in reading order.
HEADLINES: tuple[Headline, ...] = (
    Headline(
        GPA,
        "GPA needs a small fraction of the memory of full attention (the paper's baseline: a materialised score matrix)",
        "{ch1_mem_ratio_model:.0f}× less peak memory than a materialised score matrix at 128² "
        "(cost model; measured within {ch1_mem_model_max_err_pct:.1f}%), but a training step with "
        "the recompute backend needs {ch1_train_rec_over_sdpa:.1f}× the memory of fused SDPA",
        "01_gpa_complexity",
        "ch1-sweep",
        "ch1_verdict_memory",
    ),
    Headline(
        GPA,
        "Images' structure puts attention on few key blocks (the inductive bias)",
        "seeing {ch1_quality_keys_pct:.1f}% of the keys, GPA keeps {ch1_mass_image:.2f} of the "
        "softmax mass on image-like features ({ch1_mass_words_image}) and {ch1_mass_random:.2f} on "
        "random ones",
        "01_gpa_complexity",
        "ch1-quality",
        "ch1_verdict_bias",
    ),
    Headline(
        GPA,
        "(ours) our layer against the authors' code, CPU",
        "our automatic backend takes {ch1_official_min_speedup:.1f}× to "
        "{ch1_official_max_speedup:.1f}× less time per call",
        "01_gpa_complexity",
        "ch1-official",
    ),
    Headline(
        GPA,
        "GPA is faster than dense attention on the GPU",
        "the whole layer is {ch2_gpu_layer_vs_sdpa_fwd_bwd_small:.1f}× faster than dense SDPA "
        "(flash) forward+backward at {ch2_gpu_small_grid} in the one GPU run; "
        "{ch2_gpu_targets_met} of the kernel's {ch2_gpu_targets_total} targets met",
        "02_gpa_kernel",
        "ch2-others",
        "ch2_verdict_speed",
    ),
    Headline(
        GPA,
        "(ours) a hierarchical phase 1 keeps at least 95% of exact phase 1's mass at its default "
        "(declared before the study)",
        "{ch2_hier_mass:.3f} ({ch2_hier_mass_lo:.3f} to {ch2_hier_mass_hi:.3f}) of the mass with "
        "{ch2_hier_fraction_1024_pct:.1f}% of the scores at 1024²; phase 1 "
        "{ch2_hier_speedup:.1f}× faster on the CPU at {ch2_hier_time_side}²",
        "02_gpa_kernel",
        "ch2-hierarchy",
        "ch2_hier_verdict",
    ),
    Headline(
        POSE,
        "Copying through GPA beats a generator without attention (U-Net)",
        "held-out SSIM, GPA − U-Net = {ch3_seed_gpa_minus_unet_ssim:.3f} "
        "({ch3_seed_gpa_minus_unet_ssim_lo:.3f} to {ch3_seed_gpa_minus_unet_ssim_hi:.3f}); "
        "GPA − dense attention = {ch3_seed_gpa_minus_dense_ssim:.4f} "
        "({ch3_seed_gpa_minus_dense_ssim_lo:.4f} to {ch3_seed_gpa_minus_dense_ssim_hi:.4f})",
        "03_pose_morphing",
        "ch3-seeds",
        "ch3_verdict_vs_unet",
    ),
    Headline(
        POSE,
        "GPA needs less memory than dense attention in the generator",
        "the largest attention call needs {ch3_mem_fused_ratio:.2f}× the memory of fused SDPA and "
        "{ch3_mem_ratio:.3f}× that of dense attention with a materialised score matrix",
        "03_pose_morphing",
        "ch3-memory",
        "ch3_verdict_memory",
    ),
    Headline(
        DNA,
        "Fashion DNA ranks new articles better than a feature model (LightFM)",
        "AUC gap on new articles {ch4_short_dna_cold_start_gap:+.3f} "
        "({ch4_short_dna_cold_start_lo:+.3f} to {ch4_short_dna_cold_start_hi:+.3f}), positive in "
        "{ch4_short_dna_cold_start_n_positive} of {ch4_short_dna_cold_start_n_stores} store(s), Holm p {ch4_short_dna_cold_start_p_holm_text}",
        "04_fashion_dna",
        "ch4-in-short",
        "ch4_short_dna_cold_start_verdict",
    ),
    Headline(
        DNA,
        "The image adds to the tags",
        "AUC gap of DNA from tags and image over tags only {ch4_dna_image_gain_text}",
        "04_fashion_dna",
        "ch4-in-short",
        "ch4_dna_image_gain_verdict",
    ),
    Headline(
        DNA,
        "(ours) the cold-start lead on a store that is not the models' form",
        "at attribute_share {ch4_mis_claim_share}, misspecification {ch4_mis_strength:.0f}: AUC gap "
        "{ch4_mis_gap_on:+.3f} ({ch4_mis_gap_lo_on:+.3f} to {ch4_mis_gap_hi_on:+.3f}); on stores of "
        "the models' form {ch4_mis_gap_off:+.3f} ({ch4_mis_claim_off})",
        "04_fashion_dna",
        "ch4-in-short",
        "ch4_mis_claim_on",
    ),
    Headline(
        LSTM,
        "The LSTM beats static collaborative filtering (known articles)",
        "AUC gap {ch5_short_lstm_vs_static_cf_gap:+.3f} ({ch5_short_lstm_vs_static_cf_lo:+.3f} to {ch5_short_lstm_vs_static_cf_hi:+.3f}), Holm p {ch5_short_lstm_vs_static_cf_p_holm_text}, positive in {ch5_short_lstm_vs_static_cf_n_positive} of {ch5_short_lstm_vs_static_cf_n_stores} store(s)",
        "05_dynamic_customer_model",
        "ch5-in-short",
        "ch5_short_lstm_vs_static_cf_verdict",
    ),
    Headline(
        LSTM,
        "The LSTM beats popularity",
        "MAP@12 gap {ch5_short_lstm_vs_popularity_gap:+.4f} ({ch5_short_lstm_vs_popularity_lo:+.4f} to {ch5_short_lstm_vs_popularity_hi:+.4f}), Holm p {ch5_short_lstm_vs_popularity_p_holm_text}, positive in {ch5_short_lstm_vs_popularity_n_positive} of {ch5_short_lstm_vs_popularity_n_stores} store(s)",
        "05_dynamic_customer_model",
        "ch5-in-short",
        "ch5_short_lstm_vs_popularity_verdict",
    ),
    Headline(
        LSTM,
        "The LSTM's lead is personal (against a non-personal model with its article features)",
        "AUC gap {ch5_short_lstm_personal_gap:+.3f} ({ch5_short_lstm_personal_lo:+.3f} to {ch5_short_lstm_personal_hi:+.3f}), Holm p {ch5_short_lstm_personal_p_holm_text}, positive in {ch5_short_lstm_personal_n_positive} of {ch5_short_lstm_personal_n_stores} store(s)",
        "05_dynamic_customer_model",
        "ch5-in-short",
        "ch5_short_lstm_personal_verdict",
    ),
    Headline(
        LSTM,
        "The LSTM's gap to static CF grows with the drift of tastes",
        "AUC gap on known articles {ch5_drs_cf_auc_low_text} at drift {ch5_drs_drift_low}, "
        "{ch5_drs_cf_auc_high_text} at drift {ch5_drs_drift_high}; difference "
        "{ch5_drs_cf_auc_diff_text}",
        "05_dynamic_customer_model",
        "ch5-in-short",
        "ch5_drs_grows_verdict",
    ),
    Headline(
        LSTM,
        "(ours) the LSTM against static CF at other store sizes",
        "AUC gap on known articles {ch5_size_lstm_vs_static_cf_20k_text} at 20,000 customers per "
        "store, {ch5_size_lstm_vs_static_cf_100k_text} at 100,000; claims whose verdict changes "
        "with size: {ch5_size_changed}",
        "05_dynamic_customer_model",
        "ch5-sizes",
    ),
    Headline(
        LSTM,
        "The LSTM tracks a customer's changing style (one store, one cutoff)",
        "cosine to the true style gap {ch5_short_lstm_tracks_style_gap:+.3f} ({ch5_short_lstm_tracks_style_lo:+.3f} to {ch5_short_lstm_tracks_style_hi:+.3f})",
        "05_dynamic_customer_model",
        "ch5-in-short",
        "ch5_short_lstm_tracks_style_verdict",
    ),
)


def parse_glued(text: str) -> Any:
    """A glued value from its ``text/plain`` form: numbers and quoted strings as Python values,
    anything else as the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _plain(value: Any) -> Any:
    return value.replace("`", "") if isinstance(value, str) else value


def fill(headline: Headline, values: Mapping[str, Any]) -> tuple[str, str]:
    """``(measured sentence, verdict)`` of one row from glued ``values``; :data:`MISSING` where a
    key is absent. Code quotes (backticks) are dropped: the table is plain text."""
    missing = [k for k in headline.keys() if k not in values]
    if missing:
        return f"{MISSING} (needs {', '.join(missing)})", MISSING
    try:
        measured = headline.measured.format(**{k: _plain(v) for k, v in values.items()})
    except (ValueError, TypeError) as err:  # a value of another type than the template's format
        return f"cannot show: {err}", MISSING
    verdict = str(_plain(values[headline.verdict])) if headline.verdict else "no verdict stated"
    return measured, verdict


def headline_table(
    executed_dir: str | Path,
    headlines: Sequence[Headline] = HEADLINES,
) -> pd.DataFrame:
    """One row per headline: paper, claim, what was measured, verdict and a MyST reference to the
    section (``{ref}`chapter 1 <ch1-sweep>```, resolved by the section's label), from the
    executed notebooks ``<executed_dir>/<chapter>.ipynb`` of a run."""
    executed_dir = Path(executed_dir)
    cache: dict[str, dict[str, Any]] = {}
    rows = []
    for h in headlines:
        if h.chapter not in cache:
            path = executed_dir / f"{h.chapter}.ipynb"
            raw = glued_values(path) if path.exists() else {}
            cache[h.chapter] = {k: parse_glued(v) for k, v in raw.items()}
        measured, verdict = fill(h, cache[h.chapter])
        rows.append(
            {
                "paper": h.paper,
                "claim": h.claim,
                "measured in this book": measured,
                "verdict": verdict,
                "where": f"{{ref}}`chapter {h.chapter[:2].lstrip('0')} <{h.anchor}>`",
            }
        )
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    """The table as Markdown (pipes in cells escaped), for ``IPython.display.Markdown`` glued and
    pasted with ``{glue:md}`` and ``:format: myst`` (so the table and the references render)."""
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

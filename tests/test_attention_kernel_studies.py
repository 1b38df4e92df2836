"""Chapter 2's studies (the fused kernel): stored runs, the floor model, the tiling figure, the
emulated evidence and the registers table; tiny sizes, no timed assertion."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pandas as pd

from gpa_lib.attention.analysis import gpu_results
from gpa_lib.attention.analysis import kernel_studies as ks
from gpa_lib.attention.kernel.cuda.check import KernelReport, compile_status, registers_table
from gpa_lib.attention.kernel.cuda.evidence import emulated_evidence

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "02_gpa_kernel.py"
H200 = "NVIDIA H200"


def test_targets_verdict_says_none_some_all_or_no_run():
    assert ks.targets_verdict({"targets_total": 9, "targets_met": 0}) == "No target is met"
    assert ks.targets_verdict({"targets_total": 9, "targets_met": 2}) == "2 of 9 targets are met"
    assert ks.targets_verdict({"targets_total": 9, "targets_met": 9}) == "Every target is met"
    assert ks.targets_verdict({}).startswith("No GPU run is stored")


def test_flex_words_follow_the_speed():
    assert ks.flex_words(0.92) == "the kernel is slower"
    assert ks.flex_words(1.3) == "the kernel is faster"
    assert ks.flex_words(float("nan")) == ks.flex_words(None) == "no comparison was measured"


def test_gpu_run_study_reads_the_stored_run_and_glues_its_numbers():
    study = ks.gpu_run_study(target_gpu=H200)
    values = study.values
    assert {"ch2_where", "ch2_cpu_training_memory", "ch2_targets_verdict"} <= set(values)
    assert all(key.startswith("ch2_") for key in values)
    if study.data["gpu_run"] is None:
        assert study.table == ks.NO_RUN
        return
    assert list(study.table.columns) == ["target", "measured", "verdict", "note"]
    assert values["ch2_gpu_targets_total"] == len(study.table)
    speed = values["ch2_gpu_layer_vs_sdpa_fwd_bwd_small"]  # the ratio of medians
    assert values["ch2_speed_lo"] <= speed <= values["ch2_speed_hi"]
    assert values["ch2_verdict_speed"] == ks.direction_verdict(
        values["ch2_speed_lo"] - 1, values["ch2_speed_hi"] - 1
    )
    assert "timed calls" in values["ch2_speed_spread"]
    figure = ks.time_against_floor_figure(study.data["gpu_run"])
    assert figure.get_size_inches()[0] == 7.0 and len(figure.axes[0].lines) == 6


def test_without_a_run_the_tables_say_so():
    assert ks.layer_split_study(None).values == {"ch2_split": "Not measured."}
    assert ks.floor_distance_study(None).values == {"ch2_floor_distances": "Not measured."}
    assert ks.against_others_table(None) == ks.NO_RUN
    assert ks.probe_table(None) == "no probe stored"


def test_stored_run_tables_and_sentences():
    run = gpu_results.newest_kernel_runs().get(H200)
    if run is None:
        return
    split = ks.layer_split_study(run)
    assert split.values["ch2_split"] == gpu_results.split_sentence(split.data["split"])
    distances = ks.floor_distance_study(run)
    assert distances.values["ch2_floor_distances"].startswith("Measured over floor")


def test_tiling_study_draws_one_cell_and_its_tile():
    study = ks.tiling_study(figure_side=16, head_dim=8, pool=2, cell=4, topk=3, seed=0)
    assert study.values == {"ch2_tile_queries": 16, "ch2_tile_keys": 12, "ch2_fig_topk": 3}
    assert len(study.data["chosen_blocks"]) == 3
    assert len(study.figure.axes) == 3 and study.figure.get_size_inches()[0] == 7.0
    capped = ks.tiling_study(figure_side=8, head_dim=8, pool=4, cell=4, topk=8, seed=0)
    assert capped.values["ch2_fig_topk"] == 4  # no more blocks than the key grid has


def test_floor_study_glues_the_setting_and_the_floors():
    study = ks.floor_study(sides=[64, 128], heads=2, head_dim=16, pool=4, cell=8, topk=4,
                           target_gpu=H200)  # fmt: skip
    values = study.values
    assert values["ch2_keys_per_query"] == 4 * 4 * 4 and values["ch2_heads"] == 2
    assert values["ch2_largest"] == "128²" and values["ch2_smallest"] == "64²"
    assert values["ch2_rate_tflops"] > 0 and values["ch2_bandwidth_tbs"] > 0
    assert len(study.data["floors"]) == 2


def test_registers_table_and_status_sentence():
    reports = [
        KernelReport("fwd_tc<bf16,64>", "fwd_tc", 64, "80", registers=128, smem=40960),
        KernelReport("bwd<bf16,64>", "bwd", 64, "90", registers=168, spill_stores=8),
    ]
    table = registers_table(reports)
    assert list(table["arch"]) == ["sm_80", "sm_90"]
    assert list(table["spill bytes"]) == [0, 8]
    assert compile_status(table) == (
        "2 kernel builds, 1 with register spills, most registers 168 per thread"
    )
    skipped = ks.registers_study(False)
    assert skipped.values["ch2_compile_status"].startswith("not compiled in this run")
    assert skipped.table.startswith("compile check: ")


def test_emulated_evidence_without_cases_is_empty():
    table, values = emulated_evidence([])
    assert len(table) == 0 and values["ch2_evidence_total"] == 0
    assert values["ch2_evidence_passed"] == 0 and math.isnan(values["ch2_evidence_worst"])


def test_emulated_evidence_counts_the_checks(emulation):
    table, values = emulated_evidence(["f32_d32_euclid"], seed=0)
    assert values["ch2_evidence_total"] == len(table) == 4  # out, dq, dk, dv
    assert values["ch2_evidence_passed"] == int(table["ok"].sum()) == 4
    assert values["ch2_evidence_worst"] == table["error / bound"].max() <= 1
    study = ks.emulated_evidence_study(["f32_d32_euclid"], seed=0)
    assert study.values == values


def test_phase1_study_adds_percentages(emulation):
    study = ks.phase1_study(["d32_two_batches_three_heads"], seed=0)
    values = study.values
    assert values["ch2_p1_split_agreement_pct"] == 100 * values["ch2_p1_split_agreement"]
    assert values["ch2_p1_single_agreement_pct"] == 100 * values["ch2_p1_single_agreement"]
    assert isinstance(study.data["phase1"], pd.DataFrame)


# ------------------------------------------------------------------------ the chapter


def test_chapter_two_cells_are_calls_and_it_does_not_import_the_bench():
    import jupytext

    notebook = jupytext.read(CHAPTER)
    shown = [c for c in notebook.cells if c.cell_type == "code"]
    calls = [c.source for c in shown if "parameters" not in c.metadata.get("tags", [])]
    assert max(sum(1 for ln in src.splitlines() if ln.strip()) for src in calls) <= 20
    assert all(len(ln) <= 100 for c in shown for ln in c.source.splitlines())
    assert all({"hide-input", "remove-cell"} & set(c.metadata.get("tags", [])) for c in shown)
    assert CHAPTER.read_text().count("glue(") == 0  # glued through glue_all only
    tree = ast.parse("\n".join(c.source for c in shown))
    imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imports |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(str(name).startswith("gpa_lib.bench") for name in imports)


def test_chapter_two_links_resolve_to_its_targets():
    source = CHAPTER.read_text()
    targets = {line.split("(")[1].split(")")[0] for line in source.splitlines()
               if line.startswith("# (ch2-") and line.endswith(")=")}  # fmt: skip
    links = {part.split(")")[0] for part in source.split("](#")[1:]}
    assert links and links <= targets

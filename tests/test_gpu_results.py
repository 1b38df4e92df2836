"""The stored GPU run (H200, 2026-12-04) as the chapters read it: split, floors, targets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpa_lib.attention.analysis import gpu_results, gpu_targets
from gpa_lib.attention.analysis.complexity import AttentionSizes, phase1_floor, phase1_flops
from gpa_lib.attention.analysis.kernel_results import format_table, stored_kernel_results
from gpa_lib.attention.analysis.stored import stored_machines
from gpa_lib.results import RESULTS_DIR

H200 = "NVIDIA H200"


@pytest.fixture(scope="module")
def h200() -> dict:
    return gpu_results.newest_kernel_runs()[H200]


def test_the_committed_run_names_the_project_commit(h200):
    provenance = h200["provenance"]
    assert provenance["commit"] == provenance["source_commit"].split("-")[0]
    assert provenance["commit"].startswith("7da8163") and "commit_note" in provenance
    machine = json.loads((RESULTS_DIR / "machine_nvidia_h200.json").read_text())
    assert machine["provenance"]["commit"] == provenance["commit"]


def test_the_chapters_readers_see_the_run():
    names, records = stored_kernel_results()
    assert "kernel_bench_nvidia_h200" in names
    assert {r["device"] for r in records} >= {H200}
    assert any(m["gpu"] == H200 and m["date"] == "2026-12-04" for m in stored_machines())


def test_phase1_floor_is_two_passes_of_the_low_resolution_scores():
    s = AttentionSizes((1024, 1024), (1024, 1024), head_dim=64, heads=8, dtype_bytes=2)
    # 65,536 low-res queries x 65,536 key blocks x 8 heads x 2*64 FLOPs: 4.4 TFLOP per pass
    assert phase1_flops(s) == pytest.approx(2 * 64 * 8 * 65536**2)
    floor = phase1_floor(s, flops_per_s=681e12, bytes_per_s=4.25e12)
    assert floor.bound == "compute" and floor.floor_s == pytest.approx(12.9e-3, rel=0.01)
    with pytest.raises(ValueError, match="passes=0"):
        phase1_flops(s, passes=0)


def test_layer_split_and_floors(h200):
    split = gpu_results.layer_split(h200)
    assert list(split.index) == ["256²", "512²", "1024²"]
    row = split.loc["1024²"]
    assert row["layer fwd+bwd (ms)"] == pytest.approx(837.24, abs=0.01)
    assert row["outside phase 2, fwd+bwd (%)"] == pytest.approx(
        100 * (1 - 21.7535 / 837.2417), abs=0.01
    )
    assert row["phase 1 in the layer (ms)"] == pytest.approx(818.371 - 3.0084, abs=0.01)
    floors = gpu_results.floor_distances(h200)
    assert floors.loc["256²", "phase 2 fwd+bwd / floor"] == pytest.approx(10.69, abs=0.01)
    assert floors.loc["1024²", "phase 1 two-pass floor (ms)"] == pytest.approx(12.92, abs=0.01)
    others = gpu_results.against_others(h200)
    assert others.loc["256²", "layer speed-up over SDPA, fwd"] == pytest.approx(6.01, abs=0.01)
    assert others.loc["256²", "phase 2 speed-up over Flex, fwd"] == pytest.approx(0.918, abs=0.001)
    assert "did not compile" in others.loc["256²", "not measured"]


def test_targets_as_measured_at_7da8163(h200):
    table = gpu_targets.target_table(h200, gpu_results.stored_pose_runs(H200))
    assert list(table.index) == [t.key for t in gpu_targets.TARGETS]
    assert set(table["verdict"]) <= {"met", "not met", "not measured"}
    assert gpu_targets.verdict_counts(table) == {"met": 0, "not met": 7, "not measured": 2}
    assert table.loc["pose_runs", "measured"] == "failed"
    assert table.loc["pose_step", "bound"] == "<= 56.2 ms"  # half the reference's 112 ms
    assert table.loc["pose_memory", "bound"] == "< 4.21 GB"  # dense-gpu's peak
    assert "NOT met" in format_table(h200)  # python -m gpa_lib.bench kernel --show


def test_targets_follow_the_newest_complete_run(h200, tmp_path: Path):
    """A later run (a fused phase 1, say) replaces the old numbers; an incomplete one does not."""
    for name in ("kernel_bench_nvidia_h200.json", "probe_phase1_pose_nvidia_h200.json"):
        shutil.copy(RESULTS_DIR / name, tmp_path / name)
    later = json.loads(json.dumps(h200))
    later["provenance"]["date"] = "2027-01-01T00:00:00+00:00"
    for record in later["records"]:
        if record["method"] == "cuda_gpa" and record["side"] == 1024:
            record["median_ms"] = 40.0 if record["pass"] == "fwd+bwd" else 30.0
    (tmp_path / "kernel_bench_nvidia_h200_rerun.json").write_text(json.dumps(later))
    stopped = {**later, "complete": False}
    stopped["provenance"] = {**later["provenance"], "date": "2027-02-01T00:00:00+00:00"}
    (tmp_path / "kernel_bench_nvidia_h200_stopped.json").write_text(json.dumps(stopped))
    newest = gpu_results.newest_kernel_runs(tmp_path)[H200]
    assert newest["provenance"]["date"].startswith("2027-01-01")
    pose = {"runs": [{"preset": "gpa-gpu", "backend": "auto", "complete": True,
                      "step_time_ms": 50.0, "peak_memory_bytes": 3e9},
                     {"preset": "dense-gpu", "backend": "auto", "complete": True,
                      "step_time_ms": 1000.0, "peak_memory_bytes": 4.0e9}],
            "provenance": {"gpu": H200, "date": "2027-01-02"}}  # fmt: skip
    (tmp_path / "pose_train_nvidia_h200.json").write_text(json.dumps(pose))
    table = gpu_targets.target_table(newest, gpu_results.stored_pose_runs(H200, tmp_path))
    assert table.loc["layer_fwd_bwd_1024", "verdict"] == "met"
    assert table.loc["pose_runs", "verdict"] == "met"
    assert table.loc["pose_step", "verdict"] == "met"  # 50 <= 112.4 / 2
    assert (
        table.loc["pose_memory", "bound"] == "< 4 GB"
        and table.loc["pose_memory", "verdict"] == "met"
    )


def test_chapter_one_count_against_the_measured_split(h200):
    numbers = gpu_results.complexity_against_measured(h200, 1024)
    assert 90 < numbers["flop_share_pct"] < numbers["time_share_pct"] < 100
    assert numbers["time_ratio"] == pytest.approx((818.371 - 3.0084) / 3.0084, rel=1e-3)


def test_chapter_numbers_have_the_same_keys_with_and_without_a_run(h200):
    probe = gpu_results.stored_probe(H200)
    numbers = gpu_targets.chapter_numbers(h200, gpu_results.stored_pose_runs(H200), probe)
    empty = gpu_targets.chapter_numbers(None)
    assert set(numbers) == set(empty)  # the chapter glues the same keys either way
    assert numbers["outside_phase2_large_pct"] == pytest.approx(97.4, abs=0.05)
    assert numbers["commit"] == "7da8163" and numbers["date"] == "2026-12-04"
    assert numbers["targets_in_words"].startswith("Not met: ")
    assert numbers["pose_reference_step_ms"] == pytest.approx(112.4, abs=0.1)
    assert numbers["pose_dense_peak_gb"] == pytest.approx(4.21, abs=0.01)
    assert numbers["pose_auto_status"].startswith("failed on 2026-12-04")
    assert numbers["probe_chunk26_ms"] == pytest.approx(794.5, abs=0.1)
    assert 0 < numbers["probe_tf32_changed_pct"] < 1
    assert empty["targets_in_words"].startswith("Not measured")


def test_probe_and_measurement_tables(h200):
    chunks = gpu_results.phase1_chunk_table(gpu_results.stored_probe(H200))
    assert list(chunks.index) == ["256²", "512²", "1024²"]
    assert chunks.loc["1024²", "2^22"] > chunks.loc["1024²", "2^30"]
    table = gpu_results.measurement_table({H200: h200})
    assert len(table) == 24  # 8 methods x 3 grids, fwd and fwd+bwd side by side
    assert table.loc[(H200, "2026-12-04", "1024²", "sdpa"), "fwd"].startswith("dense attention")
    assert gpu_results.measurement_table({}).empty


def test_floor_model_uses_the_rates_given():
    settings = dict(heads=8, head_dim=64, pool=4, cell=8, topk=8)
    fast = gpu_results.floor_model([256], flops_per_s=1e15, bytes_per_s=1e13, **settings)
    slow = gpu_results.floor_model([256], flops_per_s=5e14, bytes_per_s=5e12, **settings)
    ratio = slow["phase 2 fwd floor (ms)"] / fast["phase 2 fwd floor (ms)"]
    assert ratio.iloc[0] == pytest.approx(2.0)


def test_training_memory_against_sdpa_reads_the_stored_bench():
    from gpa_lib.attention.analysis.stored import training_memory_against_sdpa

    memory = training_memory_against_sdpa(threads=2)
    assert memory["below"] == ["cpu"] and "reference" in memory["above"]
    assert "cpu (32.7 MiB) below fused SDPA's 42.3 MiB" in memory["sentence"]
    assert "`" not in memory["sentence"]  # glued into prose: no raw code quotes
    assert training_memory_against_sdpa(threads=99) is None


def test_split_and_floor_sentences_name_every_grid(h200):
    split = gpu_results.split_sentence(gpu_results.layer_split(h200))
    assert "97.4% at 1024²" in split and "70.2% at 256²" in split
    floors = gpu_results.floor_sentence(gpu_results.floor_distances(h200))
    assert "phase 2 forward+backward 10.7× at 256²" in floors and "63× at 1024²" in floors


def test_speed_range_of_the_committed_run_pairs_fastest_with_median(h200):
    speed = gpu_results.speed_range(h200, "cuda_gpa", "sdpa", "fwd+bwd", 256)
    ours = gpu_results.kernel_record(h200, "cuda_gpa", "fwd+bwd", 256)
    theirs = gpu_results.kernel_record(h200, "sdpa", "fwd+bwd", 256)
    assert speed["estimate"] == pytest.approx(theirs["median_ms"] / ours["median_ms"])
    assert speed["lo"] == pytest.approx(theirs["min_ms"] / ours["median_ms"])
    assert speed["hi"] == pytest.approx(theirs["median_ms"] / ours["min_ms"])
    assert speed["lo"] <= speed["estimate"] <= speed["hi"]
    assert speed["repeats"] == 20 and "no slow tail" in speed["sentence"]
    assert "median" in speed["sentence"] and "20 timed calls" in speed["sentence"]


def test_speed_range_uses_quartiles_where_the_run_keeps_them():
    def record(method, median, q1, q3):
        return {"method": method, "pass": "fwd", "side": 8, "median_ms": median, "min_ms": q1 / 2,
                "q1_ms": q1, "q3_ms": q3, "repeats": 5}  # fmt: skip

    payload = {"records": [record("cuda_gpa", 2.0, 1.0, 4.0), record("sdpa", 6.0, 3.0, 8.0)]}
    speed = gpu_results.speed_range(payload, "cuda_gpa", "sdpa", "fwd", 8)
    assert (speed["estimate"], speed["lo"], speed["hi"]) == (3.0, 0.75, 8.0)
    assert "quartile" in speed["sentence"] and "no slow tail" not in speed["sentence"]
    skipped = {"records": [record("cuda_gpa", 2.0, 1.0, 4.0),
                           {"method": "sdpa", "pass": "fwd", "side": 8, "skipped": "oom"}]}  # fmt: skip
    for missing in (None, skipped):
        gap = gpu_results.speed_range(missing, "cuda_gpa", "sdpa", "fwd", 8)
        assert gap["lo"] != gap["lo"] and gap["sentence"].startswith("not measured")


def test_kernel_bytes_count_each_pair_anew():
    from gpa_lib.attention.analysis.complexity import phase2_bytes, phase2_kernel_bytes

    # 16x16 grids, one head, D = Dv = 4, float32, pool 4, cell 8, topk 2: 4 cells, 16 key blocks
    s = AttentionSizes(q_grid=(16, 16), k_grid=(16, 16), head_dim=4, pool=4, cell=8, topk=2)
    parts = phase2_kernel_bytes(s)
    pairs = 4 * 2
    pair_keys = pairs * 16 * 8 * 4  # 16 keys of a block, k and v of 4 floats each
    assert parts["forward"] == 256 * 8 * 4 + 256 * 4 + pairs * 8 + pair_keys
    assert parts["dkdv"] == 2 * 256 * 8 * 4 + pairs * 64 * (8 * 4 + 8)
    inverse_map = pairs * 4 + 17 * 4
    assert parts["backward"] == parts["delta"] + parts["dq"] + parts["dkdv"] + inverse_map
    # at the benchmark's setting every key block is selected twice on average: the kernels move
    # more than the floor, which counts every key once
    bench = AttentionSizes(
        q_grid=(256, 256), k_grid=(256, 256), head_dim=64, heads=8, dtype_bytes=2
    )
    assert phase2_kernel_bytes(bench)["forward"] > phase2_bytes(bench)
    assert phase2_kernel_bytes(bench)["backward"] > 3 * phase2_bytes(bench, backward=True)


def test_traffic_of_the_stored_run(h200):
    table = gpu_results.traffic_table(h200)
    assert list(table.index) == ["256²", "512²", "1024²"]
    row = table.loc["1024²"]
    assert row["forward (TB/s)"] == pytest.approx(
        row["forward (GB)"] / row["forward (ms)"], rel=1e-9
    )
    assert 60 < row["dk/dv share of backward bytes (%)"] < 80  # the re-read queries dominate
    numbers = gpu_results.traffic_numbers(table, gpu_results.floor_distances(h200))
    assert numbers["ch2_traffic_grid"] == "1024²"
    assert 0 < numbers["ch2_traffic_explained_pct"] < 100
    assert numbers["ch2_traffic_copy_ms"] > numbers["ch2_traffic_allowed_ms"] > 0


def test_cell_major_model_reads_queries_once():
    from gpa_lib.attention.analysis.complexity import (
        phase2_cell_major_backward_bytes,
        phase2_kernel_bytes,
    )

    s = AttentionSizes(q_grid=(256, 256), k_grid=(256, 256), head_dim=64, heads=8, dtype_bytes=2)
    today = phase2_kernel_bytes(s)["backward"]
    f32, bf16 = (phase2_cell_major_backward_bytes(s, b) for b in (4, 2))
    assert bf16 < f32 < today
    pairs = 8 * 1024 * 8
    assert f32 - bf16 == 2 * pairs * 16 * 128 * 2  # partials written and read, 2 bytes fewer each

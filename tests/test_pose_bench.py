"""python -m gpa_lib.bench pose at the smoke scale: every study runs and writes what chapter 3 reads."""

from __future__ import annotations

import json

from gpa_lib.bench.pose import main


def _run(tmp_path, *args):
    common = ["--scale", "smoke", "--threads", "1", "--run-dir", str(tmp_path / "runs"),
              "--results-dir", str(tmp_path), "--accuracy-pairs", "4"]  # fmt: skip
    assert main([*args, *common]) == 0


def test_seeds_study(tmp_path):
    _run(tmp_path, "seeds", "--models", "gpa,unet", "--seeds", "0,1", "--machine", "test box")
    data = json.loads((tmp_path / "pose_seeds.json").read_text())
    assert data["complete"] and data["machine"] == "test box" and "provenance" in data
    gpa = data["models"]["gpa"]
    assert [run["seed"] for run in gpa["runs"]] == [0, 1]
    assert gpa["pooled"]["ssim"]["n_seeds"] == 2 and len(gpa["runs"][0]["per_pair"]["ssim"]) == 8
    assert "accuracy" in gpa["runs"][0] and "accuracy" not in data["models"]["unet"]["runs"][0]
    layer = gpa["accuracy_pooled"]["32x32"]
    assert 0 <= layer["gpa/recall"]["mean"] <= 1 and layer["dense/recall"]["mean"] == 1.0
    assert set(data["truth_status"]) == {"visible", "hidden", "no_frame"}
    assert data["differences"]["gpa_minus_unet"]["ssim"]["n_seeds"] == 2
    # A re-run reuses every finished run's measurements (saved next to its checkpoint).
    assert (tmp_path / "runs" / "gpa-seed1" / "measured.pt").is_file()
    _run(tmp_path, "seeds", "--models", "gpa,unet", "--seeds", "0,1", "--machine", "test box")
    again = json.loads((tmp_path / "pose_seeds.json").read_text())
    assert again["models"]["gpa"]["runs"] == gpa["runs"]


def test_tradeoff_and_scaling_studies(tmp_path):
    _run(tmp_path, "tradeoff", "--topk", "1,256", "--seeds", "0")
    data = json.loads((tmp_path / "pose_tradeoff.json").read_text())
    curve = data["gpa"]["curve"]
    assert [p["topk"] for p in curve] == [1, 256]
    assert curve[-1]["topk_used"] == {"32x32": 256, "16x16": 64}  # clipped to every block
    assert curve[0]["peak_training_bytes"] > 0 and curve[0]["largest_call_time"]["median_s"] > 0
    assert "ssim" in data["dense"] and data["complete"]
    _run(tmp_path, "scaling", "--sizes", "32", "--scaling-steps", "2", "--seeds", "0,1",
         "--cost-sizes", "64,128", "--max-step-s", "2")  # fmt: skip
    scaling = json.loads((tmp_path / "pose_scaling.json").read_text())
    points = scaling["points"]
    assert [(p["model"], p["size"]) for p in points] == [("gpa", 32), ("dense", 32)]
    assert all(p["step_cost"]["peak_bytes"] > 0 for p in points)
    assert [r["seed"] for r in points[0]["runs"]] == [0, 1] and points[0]["ssim"]["n_seeds"] == 2
    assert scaling["differences"]["32"]["ssim"]["n_seeds"] == 2
    # Cost-only sizes: measured while the extrapolated step fits --max-step-s, else extrapolated.
    extra = {(p["model"], p["size"]): p for p in scaling["cost_only"]}
    assert set(extra) == {("gpa", 64), ("dense", 64), ("gpa", 128), ("dense", 128)}
    for p in extra.values():
        assert p["measured"] == ("step_cost" in p)
        assert p["measured"] or p["predicted_step_s"] > 2
    from gpa_lib.pose.figures.studies import plot_scaling

    plot_scaling(scaling)


def test_compare_models_measures_memory_of_untrained_models():
    from gpa_lib.pose.experiment import compare_models, result_payload

    comparison = compare_models("smoke", ("gpa",), memory_only=("dense",))
    assert set(comparison.runs) == {"gpa"} and set(comparison.memory_only) == {"dense"}
    payload = result_payload(comparison)
    fused = payload["targets"]["memory_ratio_training_vs_fused_dense"]
    assert fused["dense_bytes"] > 0 and fused["ratio"] > 0
    assert payload["untrained_attention_memory_bytes"]["dense"]["fused"]["peak_training"] > 0
    assert "gpa_minus_dense_ssim" not in payload["targets"]  # no trained dense model to compare

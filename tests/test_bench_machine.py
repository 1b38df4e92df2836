"""``python -m gpa_lib.bench machine`` and the small GPU-run subcommands, on any machine; the machine
facts of :mod:`gpa_lib.results` (the timer and the ceilings: ``tests/test_measure.py``).

The timing code runs on the CPU at small sizes (the same functions time the GPU with CUDA events);
without a GPU each subcommand says "needs a CUDA GPU" and writes nothing.
"""

from __future__ import annotations

import json

import pytest
import torch

from gpa_lib import results
from gpa_lib.attention.analysis.stored import stored_machines
from gpa_lib.bench import __main__ as bench_cli
from gpa_lib.bench import extension, machine, pose_run
from gpa_lib.results import write_result

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


def test_stored_ceilings_round_trip(tmp_path):
    facts = {
        "gpu": {"name": "NVIDIA H200", "sm_count": 132},
        "ceilings": {"bf16_flops_per_s": 7.9e14, "bytes_per_s": 4.3e12},
    }
    write_result("machine_nvidia_h200", facts, results_dir=tmp_path)
    (stored,) = stored_machines(tmp_path)
    assert stored["gpu"] == "NVIDIA H200" and stored["source"] == "machine_nvidia_h200.json"
    assert (stored["bf16_flops_per_s"], stored["bytes_per_s"]) == (7.9e14, 4.3e12)
    assert len(stored["date"]) == 10


def test_gpu_slug_and_source_digest(tmp_path):
    assert results.gpu_slug("NVIDIA H200") == "nvidia_h200"
    assert results.gpu_slug("NVIDIA H100 80GB HBM3") == "nvidia_h100_80gb_hbm3"
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.py").write_text("ignored")
    first = results.source_digest(tmp_path)
    assert first == results.source_digest(tmp_path) and len(first) == 16
    (tmp_path / "a.py").write_text("x = 2\n")
    assert results.source_digest(tmp_path) != first


def test_run_identity_names_the_commit_it_was_given(monkeypatch):
    monkeypatch.setenv(results.SOURCE_COMMIT_ENV, "abc123")
    identity = results.run_identity()
    assert identity["source_commit"] == "abc123"
    assert identity["source_digest"] == results.source_digest()


def test_cpu_dry_run_prints_the_ceilings(capsys):
    assert machine.main(["--device", "cpu", "--seconds", "0.05", "--matmul-n", "32"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["bf16_flops_per_s"] > 0 and printed["bytes_per_s"] > 0


@no_gpu
@pytest.mark.parametrize(
    "module, argv",
    [(machine, []), (extension, []), (pose_run, [])],
    ids=["machine", "extension", "pose"],
)
def test_without_a_gpu_each_subcommand_says_so(module, argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPA_LIB_RESULTS_DIR", str(tmp_path))
    assert module.main(argv) == 1
    assert "needs a CUDA GPU" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_a_command_imports_only_its_own_module(monkeypatch, capsys):
    imported = []
    real = bench_cli.importlib.import_module

    def spy(name):
        imported.append(name)
        return real(name)

    monkeypatch.setattr(bench_cli.importlib, "import_module", spy)
    assert (
        bench_cli.main(["machine", "--device", "cpu", "--seconds", "0.01", "--matmul-n", "16"]) == 0
    )
    assert set(imported) == {"gpa_lib.bench.machine"}
    capsys.readouterr()


def test_every_command_is_listed():
    parser = bench_cli.build_parser()
    for name in ("attention", "kernel", "recsys", "machine", "extension", "pose"):
        assert name in parser.format_help()


def test_pose_driver_times_the_resumed_steps_on_the_cpu(tmp_path, capsys):
    reason = pose_run.entry_point_reason()
    if reason is not None:
        pytest.skip(reason)
    argv = [
        "--device", "cpu", "--preset", "gpa-smoke", "--steps", "5", "--warmup-steps", "2",
        "--batch-size", "4", "--n-train", "8", "--n-test", "4", "--work-dir", str(tmp_path),
    ]  # fmt: skip
    assert pose_run.main(argv) == 0
    out = capsys.readouterr().out
    assert "ms per step" in out.splitlines()[-1]
    metrics = json.loads((tmp_path / "gpa-smoke" / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 5  # the second call resumed the first run to --steps


def test_pose_driver_runs_every_preset_and_records_a_failing_one(tmp_path, monkeypatch, capsys):
    """gpa through a backend that cannot train fails; the record says so and dense still runs."""
    reason = pose_run.entry_point_reason()
    if reason is not None:
        pytest.skip(reason)
    import gpa_lib.pose.train as train_cli

    real_main = train_cli.main

    def main(argv):
        if argv[argv.index("--preset") + 1] == "gpa-smoke":
            raise RuntimeError("InductorError: flex_attention_backward does not compile")
        return real_main(argv)

    monkeypatch.setattr(train_cli, "main", main)
    argv = [
        "--device", "cpu", "--presets", "gpa-smoke", "dense-smoke", "--steps", "4",
        "--warmup-steps", "2", "--batch-size", "4", "--n-train", "8", "--n-test", "4",
        "--work-dir", str(tmp_path), "--min-run-s", "1",
    ]  # fmt: skip
    assert pose_run.main(argv) == 1  # not every preset completed
    last = capsys.readouterr().out.splitlines()[-1]
    assert "gpa-smoke (reference) FAILED: RuntimeError: InductorError" in last
    assert "dense-smoke (reference)" in last and "ms per step" in last


def test_pose_driver_reports_a_moved_entry_point(monkeypatch):
    monkeypatch.setattr(pose_run, "ENTRY_POINT", "gpa_lib.pose.no_such_module")
    assert "cannot import gpa_lib.pose.no_such_module" in pose_run.entry_point_reason()

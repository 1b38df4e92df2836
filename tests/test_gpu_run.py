"""``scripts/gpu_run.sh``, the prepared GPU run, dry-run on a machine without a GPU.

On such a machine every step must say "needs a CUDA GPU" within seconds, the run must end with a
summary table (printed last and kept in OUTDIR/summary.txt) and a non-zero exit status, and OUTDIR
must hold no more than the 7 files planned (the device tool brings back 8, no folders).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_run.sh"
STEPS = ("preflight", "machine", "extension", "gpu-tests", "sanitizer", "kernel", "pose")

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason="this machine has a GPU: the script would run for real"
)


def run_script(out: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environment = {
        **os.environ,
        "PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
        "GPA_LIB_SOURCE_COMMIT": "test-commit",
        **env,
    }
    environment.pop("GPA_LIB_RESULTS_DIR", None)
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, time.perf_counter() - started


def summary_rows(out: Path) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (out / "summary.txt").read_text().splitlines()[1:]:
        parts = line.split(None, 3)
        if parts and parts[0] in STEPS:
            rows[parts[0]] = (parts[1], parts[3] if len(parts) > 3 else "")
    return rows


def test_without_a_gpu_every_step_says_so_quickly(tmp_path):
    out = tmp_path / "out"
    done, seconds = run_script(out)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    # Seven steps of a few seconds each (python and torch start-up) on a busy 2-core machine.
    assert seconds < 120, f"the dry run took {seconds:.0f} s"
    rows = summary_rows(out)
    assert list(rows) == list(STEPS)
    for step, (status, note) in rows.items():
        assert status == "NO-GPU", (step, status, note)
        assert note.startswith("needs a CUDA GPU"), (step, note)
    # The summary is the end of the output (the device tool returns only the last 12,000 characters).
    tail = done.stdout[-2000:]
    assert "step       status" in tail and "gpu_run: NOT everything passed" in tail
    assert "source commit test-commit" in (out / "summary.txt").read_text()
    entries = sorted(p.name for p in out.iterdir())
    assert len(entries) <= 7 and all((out / name).is_file() for name in entries), entries
    assert {"summary.txt", "run.log", "build.log", "gpu_tests.xml"} <= set(entries)
    assert not any(name.endswith(".json") for name in entries)  # nothing measured, nothing written
    assert "needs a CUDA GPU" in (out / "run.log").read_text()


def test_a_spent_budget_skips_the_remaining_steps(tmp_path):
    out = tmp_path / "out"
    done, _ = run_script(out, GPU_RUN_BUDGET_S="16")
    assert done.returncode == 1
    rows = summary_rows(out)
    assert list(rows) == list(STEPS)
    assert rows["preflight"][0] == "NO-GPU"
    skipped = [step for step, (status, _) in rows.items() if status == "SKIP"]
    assert "pose" in skipped and "kernel" in skipped, rows
    assert all("budget left" in rows[step][1] for step in skipped)


def test_usage_without_an_outdir():
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage: bash scripts/gpu_run.sh OUTDIR" in done.stderr


def test_a_hanging_step_is_stopped_by_its_timeout(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        '[[ " $* " == *" machine "* ]] && exec sleep 1000\n'
        f'exec {sys.executable} "$@"\n'
    )
    fake.chmod(0o755)
    out = tmp_path / "out"
    done, seconds = run_script(out, PYTHON=str(fake), GPU_RUN_BUDGET_S="24")
    assert done.returncode == 1
    rows = summary_rows(out)
    assert rows["machine"][0] == "TIMEOUT" and "timeout" in rows["machine"][1], rows
    assert seconds < 60


def test_a_used_outdir_is_refused(tmp_path):
    (tmp_path / "kernel_bench_old.json").write_text("{}")
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "is not empty" in done.stderr


def test_a_copy_inside_another_checkout_does_not_take_its_head(tmp_path):
    """The copy on a GPU machine has no .git; an enclosing checkout's HEAD is not its commit."""
    outer = tmp_path / "outer"
    (outer / "copy" / "scripts").mkdir(parents=True)
    (outer / "copy" / "scripts" / "gpu_run.sh").write_text(SCRIPT.read_text())
    for args in (["init", "-q"], ["add", "."]):
        subprocess.run(["git", *args], cwd=outer, check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "outer"],
        cwd=outer,
        check=True,
    )
    environment = {k: v for k, v in os.environ.items() if k != "GPA_LIB_SOURCE_COMMIT"}
    out = tmp_path / "out"
    subprocess.run(
        ["bash", str(outer / "copy" / "scripts" / "gpu_run.sh"), str(out)],
        env={**environment, "GPU_RUN_STEPS": "none", "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "source commit not given" in (out / "summary.txt").read_text()


def test_the_gpu_tests_step_runs_every_file_with_gpu_marks():
    tests = Path(__file__).resolve().parent
    marked = {p.name for p in tests.glob("test_*.py") if "@pytest.mark.gpu" in p.read_text()}
    marked.discard(Path(__file__).name)  # this file names the decorator only here
    script = (tests.parent / "scripts" / "gpu_run.sh").read_text()
    step = script[script.index("run_step gpu-tests") : script.index("# pytest passes when")]
    assert marked and all(f"tests/{name}" in step for name in marked), sorted(marked)

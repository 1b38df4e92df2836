"""``scripts/gpu_run.sh``, the prepared GPU run, dry-run on a machine without a GPU.

On such a machine every step must say "needs a CUDA GPU" within seconds, the run must end with a
summary table (printed last and kept in OUTDIR/summary.txt) and a non-zero exit status, and OUTDIR
must hold no more than the 8 files planned (the device tool brings back 8, no folders).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_run.sh"
STEPS = (
    "preflight",
    "machine",
    "extension",
    "gpu-tests",
    "sanitizer",
    "kernel",
    "hierarchy",
    "pose",
)

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


def step_starts(log: str) -> dict[str, tuple[int, int]]:
    """Step -> (its timeout, the budget left when it started), from the ``=== step (...)`` lines."""
    pattern = r"^=== (\S+) \(timeout (\d+) s, (\d+) s of the budget left\)"
    return {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(pattern, log, re.M)}


def test_without_a_gpu_every_step_says_so_quickly(tmp_path):
    out = tmp_path / "out"
    done, seconds = run_script(out)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    # Eight steps of a few seconds each (python and torch start-up) on a busy 2-core machine.
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
    assert len(entries) <= 8 and all((out / name).is_file() for name in entries), entries
    assert {"summary.txt", "run.log", "build.log", "gpu_tests.xml"} <= set(entries)
    assert not any(name.endswith(".json") for name in entries)  # nothing measured, nothing written
    log = (out / "run.log").read_text()
    assert "needs a CUDA GPU" in log
    assert "gpa_lib.bench hierarchy --device cuda --images 2 --settings 4x8" in log
    starts = step_starts(log)
    # The hierarchy step gets its cap (HIERARCHY_S, 75 s); the kernel benchmark leaves it and the
    # pose runs' POSE_MIN_S (100 s) plus a 5 s margin (the budget may tick once in between).
    assert starts["hierarchy"][0] == 75, starts
    kernel_timeout, kernel_left = starts["kernel"]
    assert 0 <= kernel_timeout - (kernel_left - 75 - 100 - 5) <= 1, starts


def test_a_spent_budget_skips_the_remaining_steps(tmp_path):
    out = tmp_path / "out"
    done, _ = run_script(out, GPU_RUN_BUDGET_S="16")
    assert done.returncode == 1
    rows = summary_rows(out)
    assert list(rows) == list(STEPS)
    assert rows["preflight"][0] == "NO-GPU"
    skipped = [step for step, (status, _) in rows.items() if status == "SKIP"]
    assert "pose" in skipped and "kernel" in skipped and "hierarchy" in skipped, rows
    assert all("budget left" in rows[step][1] for step in skipped)


def test_the_hierarchy_step_leaves_the_pose_runs_their_share(tmp_path):
    """With 160 s the kernel benchmark (which leaves 75 + 100 s) is skipped, the hierarchy step's
    timeout is what is left less POSE_MIN_S, below its cap, and the pose runs still start."""
    out = tmp_path / "out"
    done, _ = run_script(out, GPU_RUN_BUDGET_S="160")
    assert done.returncode == 1
    rows = summary_rows(out)
    assert list(rows) == list(STEPS)
    assert rows["kernel"][0] == "SKIP" and "budget left" in rows["kernel"][1], rows
    assert rows["hierarchy"][0] == "NO-GPU" and rows["pose"][0] == "NO-GPU", rows
    timeout, left = step_starts((out / "run.log").read_text())["hierarchy"]
    assert timeout < 75 and 0 <= timeout - (left - 100) <= 1, (timeout, left)


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


def test_the_steps_and_files_are_listed_everywhere():
    """The script's default GPU_RUN_STEPS, its header and the README's table name the same steps in
    the same order; the header's file list names at most 8 files, the hierarchy's JSON among them."""
    script = SCRIPT.read_text()
    default = re.search(r'STEPS=" \$\{GPU_RUN_STEPS:-([^}]*)\} "', script)
    assert default and tuple(default[1].split()) == STEPS, default
    header = script[: script.index("set -u")]
    listed = re.findall(r"^#   (\S+) {2,}", header, re.M)
    assert tuple(listed) == STEPS, listed
    files_block = header[header.index("OUTDIR gets at most 8 plain files") :]
    files_block = files_block[files_block.index("\n") : files_block.index("# Build products")]
    files = files_block.replace("#", " ").split()
    assert len(files) <= 8 and "hierarchy_phase1_cuda.json" in files, files
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| step | command | writes |") :]
    table = table[: table.index("\n\n")]
    rows = tuple(line.split("|")[1].strip() for line in table.splitlines()[2:])
    assert rows == STEPS, rows

"""The wheel carries the committed results: a Colab reader's chapters find them without the repository.

The Colab button installs gpa_lib from the repository as a wheel, which holds no ``data/`` folder;
``setup.py`` packages ``data/results/*.json`` as ``gpa_lib/stored_results`` and
``gpa_lib.results.RESULTS_DIR`` falls back to it. The test builds the wheel from a copy of the tree
(no build isolation, so no download), installs it into a fresh venv and reads results from there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What the wheel is built from (a copy, so the build's build/ and egg-info never touch the tree).
SOURCES = ("pyproject.toml", "setup.py", "README.md", "gpa_lib", "data/results")

PROBE = """
import json, os
from pathlib import Path
import gpa_lib, gpa_lib.results as r
from gpa_lib.recsys.eval.report import load_study
from gpa_lib.attention.analysis.gpu_results import newest_kernel_runs
print(json.dumps({
    "package": gpa_lib.__file__,
    "results_dir": str(r.RESULTS_DIR),
    "packaged": r.RESULTS_DIR == r.PACKAGED_RESULTS_DIR,
    "backtest_profile": r.read_result("backtest")["provenance"]["profile"],
    "drift": "provenance" in load_study("drift"),
    "kernel_gpus": sorted(newest_kernel_runs()),
    "writes_to": str(r.default_results_dir()),
}))
"""


def test_wheel_carries_the_committed_results(tmp_path: Path):
    src = tmp_path / "src"
    for rel in SOURCES:
        if (REPO / rel).is_dir():
            shutil.copytree(
                REPO / rel, src / rel, ignore=shutil.ignore_patterns("__pycache__", "*.so")
            )
        else:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", *isolation, "-q", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("gpa_lib-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    # The libraries of this environment (torch, pandas), after the wheel on the path; the path line
    # of a .pth does not run that folder's own .pth files, so its editable gpa_lib stays out.
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "zz_outer_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPA_LIB_RESULTS_DIR")}
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run(
        [str(python), "-c", PROBE], cwd=work, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(venv)), found
    assert found["packaged"] and found["results_dir"].endswith("gpa_lib/stored_results")
    assert found["backtest_profile"] and found["drift"]
    assert found["kernel_gpus"], "chapter 2's stored GPU runs are missing from the wheel"
    assert found["writes_to"] == str(work / "results")  # never into the installed package
    committed = {p.name for p in (REPO / "data" / "results").glob("*.json")}
    packaged = {p.name for p in Path(found["results_dir"]).glob("*.json")}
    assert packaged == committed

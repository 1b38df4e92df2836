"""The wheel carries the committed results: a Colab reader's chapters find them without the repository.

The Colab button installs gpa_lib from the repository as a wheel, which holds no ``data/`` folder;
``setup.py`` packages ``data/results/*.json`` as ``gpa_lib/stored_results`` and
``gpa_lib.results.RESULTS_DIR`` falls back to it. The test builds the wheel from a copy of the tree
(no build isolation, so no download), installs it into a fresh venv, reads results from there and
executes chapter 2 (smoke) with the installed package.
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

import pytest

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


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from a copy of this tree installed (no build isolation, no
    download); the libraries of this environment (torch, pandas, papermill) come after it on the path."""
    tmp_path = tmp_path_factory.mktemp("wheel")
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
    # The path line of a .pth does not run that folder's own .pth files: its editable gpa_lib stays out.
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "zz_outer_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def clean_env() -> dict[str, str]:
    """This environment without what would point the venv back at the checkout or its results."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "GPA_LIB_RESULTS_DIR", "GPA_BOOK_RUN_SUMMARY")
    }


def test_wheel_carries_the_committed_results(wheel_venv: Path, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-c", PROBE],
        cwd=work,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(wheel_venv)), found
    assert found["packaged"] and found["results_dir"].endswith("gpa_lib/stored_results")
    assert found["backtest_profile"] and found["drift"]
    assert found["kernel_gpus"], "chapter 2's stored GPU runs are missing from the wheel"
    assert found["writes_to"] == str(work / "results")  # never into the installed package
    committed = {p.name for p in (REPO / "data" / "results").glob("*.json")}
    packaged = {p.name for p in Path(found["results_dir"]).glob("*.json")}
    assert packaged == committed


@pytest.mark.notebooks
def test_chapter_2_runs_from_the_wheel(wheel_venv: Path, tmp_path: Path):
    """Chapter 2 (smoke), which renders the stored GPU runs, executes with gpa_lib from the wheel."""
    import nbformat
    import yaml

    from gpa_lib.book import BookProject
    from gpa_lib.book.execute import to_ipynb

    project = BookProject()
    chapter = project.notebook("02_gpa_kernel")
    source = to_ipynb(chapter, tmp_path / "02_gpa_kernel.ipynb")
    nb = nbformat.read(source, as_version=4)
    probe = "import gpa_lib\nprint('PACKAGE', gpa_lib.__file__)"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    nbformat.write(nb, source)
    (tmp_path / "params.yml").write_text(yaml.safe_dump(project.parameters_for(chapter, "smoke")))
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-m", "papermill", str(source), str(out)]
        + ["-f", str(tmp_path / "params.yml"), "-k", "python3", "--cwd", str(work)]
        + ["--no-progress-bar", "--log-level", "ERROR"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = "".join(
        "".join(o.get("text", "")) for o in nbformat.read(out, as_version=4).cells[-1].outputs
    )
    assert f"PACKAGE {wheel_venv}" in printed, printed

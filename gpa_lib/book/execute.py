"""Execute the book's notebooks with papermill, one subprocess each, with timeouts and a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
import yaml

from gpa_lib.book.errors import BookError
from gpa_lib.book.project import BookProject, Notebook
from gpa_lib.results import atomic_write_json, write_result

KERNEL = "python3"


@dataclass
class RunRecord:
    """What happened to one notebook."""

    name: str
    status: str  # "ok" | "failed" | "timeout"
    seconds: float
    error: str | None = None  # one line naming the cell and the exception


def executed_dir(project: BookProject, profile: str) -> Path:
    return project.build_dir / "executed" / profile


def results_dir_for(project: BookProject, profile: str) -> Path:
    """Where notebooks write result JSON: the committed data/results for real profiles, the build folder for smoke."""
    if profile == "smoke":
        return executed_dir(project, profile) / "results"
    return project.root / "data" / "results"


def to_ipynb(notebook: Notebook, target: Path) -> Path:
    """Convert the percent-format source to .ipynb (kernelspec kept, so papermill knows the language)."""
    import jupytext

    nb = jupytext.read(notebook.source)
    nb.metadata.setdefault(
        "kernelspec", {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    )
    nb.metadata["kernelspec"].setdefault("language", "python")
    target.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, target, fmt="ipynb")
    return target


def first_error(path: Path) -> str | None:
    """'cell N (`first line`): Type: message' for the first cell with an error output, else None.

    N counts the code cells of the source notebook (papermill's injected-parameters cell is skipped).
    """
    if not path.exists():
        return None
    nb = nbformat.read(path, as_version=4)
    code_index = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue
        code_index += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                line = next((s for s in cell.source.splitlines() if s.strip()), "").strip()
                message = str(output.get("evalue", "")).strip().splitlines()
                evalue = message[0] if message else ""
                return f"cell {code_index} (`{line[:60]}`): {output.get('ename')}: {evalue}"
    return None


def execute_one(
    project: BookProject, notebook: Notebook, profile: str, extra: dict | None = None
) -> RunRecord:
    """Execute one notebook into ``_build/executed/<profile>/<name>.ipynb``; written only when it succeeds."""
    out_dir = executed_dir(project, profile)
    params = project.parameters_for(notebook, profile) | (extra or {})
    timeout = project.timeout_s(profile)
    with tempfile.TemporaryDirectory(prefix=f"{notebook.name}.", dir=out_dir) as work:
        work = Path(work)
        source = to_ipynb(notebook, work / "input.ipynb")
        output = work / f"{notebook.name}.ipynb"
        (work / "params.yml").write_text(yaml.safe_dump(params))
        # MPLBACKEND is left to ipykernel, whose inline backend turns figures into notebook outputs.
        env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"} | {
            "GPA_LIB_RESULTS_DIR": str(results_dir_for(project, profile)),
            "GPA_PROFILE": profile,
            "PYTHONHASHSEED": "0",
        }
        cmd = [
            sys.executable,
            "-m",
            "papermill",
            str(source),
            str(output),
            "-f",
            str(work / "params.yml"),
            "-k",
            KERNEL,
            "--cwd",
            str(notebook.source.parent),
            "--no-progress-bar",
            "--log-level",
            "ERROR",
        ]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            seconds = time.perf_counter() - start
            return RunRecord(
                notebook.name, "timeout", seconds, f"exceeded the {profile} timeout of {timeout} s"
            )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            detail = (
                first_error(output)
                or _last_line(proc.stderr)
                or f"papermill exited with {proc.returncode}"
            )
            failed = out_dir / f"{notebook.name}.failed.ipynb"
            if output.exists():
                os.replace(output, failed)
            return RunRecord(notebook.name, "failed", seconds, detail)
        os.replace(output, out_dir / f"{notebook.name}.ipynb")
        (out_dir / f"{notebook.name}.failed.ipynb").unlink(missing_ok=True)
        return RunRecord(notebook.name, "ok", seconds)


def _last_line(text: str) -> str:
    lines = [s.strip() for s in text.strip().splitlines() if s.strip()]
    return lines[-1] if lines else ""


def run_notebooks(
    project: BookProject, profile: str, *, only: str | None = None, jobs: int = 1, echo=print
) -> list[RunRecord]:
    """Validate, then execute the chapters (``jobs`` at a time), then the summary pages; write the summary."""
    project.validate(profile)  # every notebook, before anything runs
    if jobs < 1:
        raise BookError(f"--jobs {jobs} must be at least 1")
    notebooks = [project.notebook(only)] if only else project.notebooks()
    chapters = [nb for nb in notebooks if not nb.is_summary]
    pages = [nb for nb in notebooks if nb.is_summary]
    out_dir = executed_dir(project, profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "run_summary.json"
    previous = _read_summary(summary_path) if only else {}
    total = len(notebooks)
    done: list[RunRecord] = []

    def run(nb: Notebook, extra: dict | None = None) -> RunRecord:
        record = execute_one(project, nb, profile, extra)
        done.append(record)
        mark = "ok" if record.status == "ok" else record.status.upper()
        echo(
            f"[{len(done)}/{total}] {nb.name:<32} {mark:<7} {record.seconds:7.1f} s"
            + (f"  {record.error}" if record.error else "")
        )
        return record

    echo(f"executing {total} notebook(s), profile {profile!r}, into {out_dir}")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        records = list(pool.map(run, chapters))
    records_by_name = previous | {r.name: asdict(r) for r in records}
    _write_summary(summary_path, profile, records_by_name)
    for page in pages:  # summary pages read the chapters' times, so they run last
        records.append(run(page, {"run_summary": str(summary_path)}))
    records_by_name |= {r.name: asdict(r) for r in records}
    _write_summary(summary_path, profile, records_by_name)
    if profile != "smoke" and not only:
        write_result(
            f"book_run_{profile}",
            {"notebooks": list(records_by_name.values())},
            profile=profile,
            wall_time_s=sum(r.seconds for r in records),
            results_dir=results_dir_for(project, profile),
        )
    echo(format_table(records))
    failed = [r for r in records if r.status != "ok"]
    if failed:
        first = failed[0]
        raise BookError(
            f"notebook {first.name} {first.status}: {first.error}"
            + (f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else "")
        )
    return records


def _read_summary(path: Path) -> dict:
    if not path.exists():
        return {}
    return {r["name"]: r for r in json.loads(path.read_text())["notebooks"]}


def _write_summary(path: Path, profile: str, records: dict) -> None:
    atomic_write_json(
        path,
        {
            "profile": profile,
            "notebooks": list(records.values()),
            "total_s": round(sum(r["seconds"] for r in records.values()), 2),
        },
    )


def format_table(records: list[RunRecord]) -> str:
    width = max([len(r.name) for r in records] + [8])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  status", "-" * (width + 18)]
    lines += [f"{r.name:<{width}}  {r.seconds:8.1f}  {r.status}" for r in records]
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in records):8.1f}")
    return "\n".join(lines)

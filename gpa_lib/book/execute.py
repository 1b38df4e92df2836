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

from gpa_lib.book.agreement import Agreement
from gpa_lib.book.cache import (
    CacheRecord,
    cache_key,
    declared_inputs,
    environment_parts,
    key_parts,
    library_hash,
    sha256_file,
    sha256_json,
    why_run,
)
from gpa_lib.book.errors import BookError
from gpa_lib.book.glue import glued_values
from gpa_lib.book.outputs import (
    committed_results_dir,
    compare_with_committed,
    executed_dir,
    own_result_paths,
    publish_results,
    publish_to_committed,
    results_dir_for,
)
from gpa_lib.book.project import BookProject, Notebook
from gpa_lib.book.style import RC_ENV, RC_FILE
from gpa_lib.read_log import ENV as READ_LOG_ENV
from gpa_lib.read_log import read_log
from gpa_lib.results import atomic_write_json, write_result

KERNEL = "python3"
#: The runner tells a summary page (book/reproduce.py) where the run's summary is through this
#: variable rather than a parameter, so no absolute path of the build machine lands in its cells.
RUN_SUMMARY_ENV = "GPA_BOOK_RUN_SUMMARY"
#: A chapter that states its own wall time glues it under a key ending in this suffix (``ch1_wall_s``);
#: the run summary carries that value, so the reproduce table and the chapter's footer agree.
CHAPTER_WALL_SUFFIX = "_wall_s"


@dataclass
class RunRecord:
    """What happened to one notebook."""

    name: str
    status: str  # "ok" (executed) | "reused" (cache hit) | "failed" | "timeout"
    seconds: float  # wall time in this run (a reused notebook costs only the cache check)
    error: str | None = None  # one line naming the cell and the exception
    reason: str | None = None  # why it was executed: "no cache", "source changed", "--force", ...
    executed_s: float | None = None  # wall time of the execution that produced the notebook

    @property
    def why(self) -> str:
        """The summary's last column: why it ran (and how it failed), or what the reused page cost."""
        if self.status == "reused":
            return f"unchanged (executed in {self.executed_s:.1f} s)"
        return "; ".join(part for part in (self.reason, self.error) if part)


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


def reads_path(out_dir: Path, name: str) -> Path:
    """Where the runner keeps the committed results a notebook opened in its last successful
    execution (a JSON list of paths relative to the project root; :mod:`gpa_lib.read_log`)."""
    return Path(out_dir) / f"{name}.reads.json"


def execute_one(
    project: BookProject,
    notebook: Notebook,
    profile: str,
    extra: dict | None = None,
    *,
    parts: dict | None = None,
    run_summary: Path | None = None,
) -> RunRecord:
    """Execute one notebook into ``_build/executed/<profile>/<name>.ipynb``; written only when it succeeds.

    The chapter writes its result JSON into a private folder; on success the files move to the profile's
    results folder and, last, the cache record (``parts``: the key parts it ran with) is written, so a run
    killed at any point leaves no record for a notebook it did not finish.
    """
    out_dir = executed_dir(project, profile)
    params = project.parameters_for(notebook, profile) | (extra or {})
    timeout = project.timeout_s(profile)
    with tempfile.TemporaryDirectory(prefix=f"{notebook.name}.", dir=out_dir) as work:
        work = Path(work)
        source = to_ipynb(notebook, work / "input.ipynb")
        output = work / f"{notebook.name}.ipynb"
        staged_results = work / "results"
        staged_results.mkdir()
        (work / "params.yml").write_text(yaml.safe_dump(params))
        # MPLBACKEND is left to ipykernel, whose inline backend turns figures into notebook outputs.
        env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"} | {
            "GPA_LIB_RESULTS_DIR": str(staged_results),
            "GPA_PROFILE": profile,
            "PYTHONHASHSEED": "0",
            RC_ENV: str(RC_FILE),  # the book's figure size, DPI and fonts (gpa_lib/book/style.py)
        }
        if run_summary is not None:  # an environment variable: no build path in a notebook's cells
            env[RUN_SUMMARY_ENV] = str(run_summary)
        env[READ_LOG_ENV] = str(work / "reads.log")  # the committed results it opens
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
        results = publish_results(staged_results, results_dir_for(project, profile))
        executed = out_dir / f"{notebook.name}.ipynb"
        CacheRecord.path_for(out_dir, notebook.name).unlink(
            missing_ok=True
        )  # never a stale pairing
        scrub_build_paths(output, project, notebook)
        atomic_write_json(
            reads_path(out_dir, notebook.name),
            [os.path.relpath(p, project.root) for p in read_log(work / "reads.log")],
        )
        os.replace(output, executed)
        (out_dir / f"{notebook.name}.failed.ipynb").unlink(missing_ok=True)
        if parts is not None:
            own = own_result_paths(project, profile, results)
            parts = parts | {"inputs": {k: v for k, v in parts["inputs"].items() if k not in own}}
            CacheRecord(
                name=notebook.name,
                key=cache_key(parts),
                parts=parts,
                notebook_sha256=sha256_file(executed),
                seconds=round(seconds, 2),
                executed_at=CacheRecord.now(),
                results=results,
            ).write(out_dir)
        return RunRecord(notebook.name, "ok", seconds, executed_s=seconds)


def scrub_build_paths(path: Path, project: BookProject, notebook: Notebook) -> None:
    """Replace papermill's absolute input and output paths (the build machine's) with relative names."""
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill")
    if not meta:
        return
    meta["input_path"] = notebook.source.relative_to(project.root).with_suffix(".ipynb").as_posix()
    meta["output_path"] = f"{notebook.name}.ipynb"
    nbformat.write(nb, path)


def _last_line(text: str) -> str:
    lines = [s.strip() for s in text.strip().splitlines() if s.strip()]
    return lines[-1] if lines else ""


def run_notebooks(
    project: BookProject,
    profile: str,
    *,
    only: str | None = None,
    jobs: int = 1,
    force: bool = False,
    publish: bool = False,
    echo=print,
) -> list[RunRecord]:
    """Validate, then bring the chapters up to date (``jobs`` at a time), then the summary pages.

    A notebook whose cache key matches its record is reused; ``force`` executes every selected notebook.
    Results stay under ``_build``; the table says whether each agrees with ``data/results/``.
    ``publish`` then copies them (and ``book_run_<profile>.json``) into ``data/results/``.
    """
    if publish and profile == "smoke":
        raise BookError(
            "--publish copies results into data/results/, the committed results; "
            "the smoke profile's tiny runs are not results: use --profile full or gpu"
        )
    project.validate(profile)  # every notebook, before anything runs
    if jobs < 1:
        raise BookError(f"--jobs {jobs} must be at least 1")
    unknown = sorted(set(declared_inputs(project)) - {nb.name for nb in project.notebooks()})
    if unknown:
        raise BookError(
            f"_config.yml gpa_book.inputs names unknown notebook(s): {', '.join(unknown)}"
        )
    notebooks = [project.notebook(only)] if only else project.notebooks()
    chapters = [nb for nb in notebooks if not nb.is_summary]
    pages = [nb for nb in notebooks if nb.is_summary]
    out_dir = executed_dir(project, profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "run_summary.json"
    library = library_hash()
    environment = environment_parts(project.root)
    total = len(notebooks)
    done: list[RunRecord] = []
    failures: dict[str, RunRecord] = {}

    def run(
        nb: Notebook,
        extra_inputs: dict | None = None,
        summary: Path | None = None,
    ) -> RunRecord:
        start = time.perf_counter()
        params = project.parameters_for(nb, profile)
        record = CacheRecord.read(out_dir, nb.name)
        own = own_result_paths(project, profile, record.results) if record else set()
        parts = key_parts(
            project, nb, params, library=library, environment=environment, exclude_inputs=own
        )
        parts["inputs"] |= extra_inputs or {}
        reason = (
            "--force"
            if force
            else why_run(
                record,
                parts,
                out_dir / f"{nb.name}.ipynb",
                results_dir_for(project, profile),
                failed_before=(out_dir / f"{nb.name}.failed.ipynb").exists(),
            )
        )
        if reason is None:
            result = RunRecord(
                nb.name, "reused", time.perf_counter() - start, executed_s=record.seconds
            )
        else:
            result = execute_one(project, nb, profile, parts=parts, run_summary=summary)
            result.reason = reason
            if result.status != "ok":
                failures[nb.name] = result
        done.append(result)
        mark = result.status.upper() if result.status in ("failed", "timeout") else result.status
        echo(f"[{len(done)}/{total}] {nb.name:<32} {mark:<7} {result.seconds:7.1f} s  {result.why}")
        return result

    echo(f"bringing {total} notebook(s) up to date, profile {profile!r}, in {out_dir}")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        records = list(pool.map(run, chapters))
    summary = _write_summary(summary_path, project, profile, failures)
    for page in pages:  # summary pages read the chapters' times, so they run last
        records.append(run(page, {"run_summary": sha256_json(summary)}, summary_path))
    _write_summary(summary_path, project, profile, failures, pages=True)
    executed = [r for r in records if r.status != "reused"]
    agreements = compare_with_committed(project, profile, [nb.name for nb in notebooks])
    atomic_write_json(
        out_dir / "last_run.json",
        {
            "profile": profile,
            "only": only,
            "force": force,
            "notebooks": [asdict(r) for r in records],
            "results": [asdict(a) | {"line": a.line} for a in agreements],
        },
    )
    echo(format_table(records, agreements))
    failed = [r for r in records if r.status in ("failed", "timeout")]
    if publish and not failed:
        for path in publish_to_committed(project, profile, [nb.name for nb in notebooks]):
            echo(f"published {path.relative_to(project.root)}")
        if not only:
            entries = json.loads(summary_path.read_text())["notebooks"]
            path = write_result(
                f"book_run_{profile}",
                {"notebooks": entries, "executed_this_run": [r.name for r in executed]},
                profile=profile,
                wall_time_s=sum(r.seconds for r in executed),
                results_dir=committed_results_dir(project),
            )
            echo(f"published {path.relative_to(project.root)}")
    if failed:
        first = failed[0]
        raise BookError(
            f"notebook {first.name} {first.status}: {first.error}"
            + (f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else "")
        )
    return records


def chapter_wall_s(executed: Path) -> float | None:
    """The wall time a chapter glued about itself (the one key ending in ``_wall_s``), else None."""
    if not executed.is_file():
        return None
    found = [v for k, v in glued_values(executed).items() if k.endswith(CHAPTER_WALL_SUFFIX)]
    try:
        return float(found[0]) if len(found) == 1 else None  # unrounded: formatted as the footer is
    except ValueError:
        return None


def _write_summary(
    path: Path,
    project: BookProject,
    profile: str,
    failures: dict[str, RunRecord],
    *,
    pages: bool = False,
) -> dict:
    """The notebooks as the build will show them: each with the wall time of the execution behind its page.

    Built from the cache records (and this run's failures), so an unchanged book gives an identical
    summary and the pages that read it are reused too.
    """
    out_dir = executed_dir(project, profile)
    entries = []
    for nb in project.notebooks():
        if nb.is_summary and not pages:
            continue
        if nb.name in failures:
            failure = failures[nb.name]
            entries.append(
                {"name": nb.name, "status": failure.status, "seconds": round(failure.seconds, 2)}
            )
            continue
        record = CacheRecord.read(out_dir, nb.name)
        if record is not None:
            entries.append(
                {
                    "name": nb.name,
                    "status": "ok",
                    "seconds": record.seconds,
                    "chapter_s": chapter_wall_s(out_dir / f"{nb.name}.ipynb"),
                    "executed_at": record.executed_at,
                }
            )
    summary = {
        "profile": profile,
        "notebooks": entries,
        "total_s": round(sum(e["seconds"] for e in entries), 2),
    }
    atomic_write_json(path, summary)
    return summary


def format_table(records: list[RunRecord], agreements: list[Agreement] = ()) -> str:
    """One line per notebook: this run's seconds, ok/reused/failed/timeout, and why it ran; then one
    line per result file: does it agree with the committed ``data/results/`` copy."""
    width = max([len(r.name) for r in records] + [8])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  {'status':<7}  why", "-" * (width + 40)]
    lines += [f"{r.name:<{width}}  {r.seconds:8.1f}  {r.status:<7}  {r.why}" for r in records]
    reused = sum(r.status == "reused" for r in records)
    lines.append(
        f"{'total':<{width}}  {sum(r.seconds for r in records):8.1f}  "
        f"{len(records) - reused} executed, {reused} reused"
    )
    if agreements:
        width = max(len(a.name) for a in [*agreements, Agreement("result file", "")])
        lines += ["", f"{'result file':<{width}}  vs data/results/ (the committed copy)"]
        lines.append("-" * (width + 40))
        lines += [f"{a.name:<{width}}  {a.line}" for a in agreements]
    return "\n".join(lines)

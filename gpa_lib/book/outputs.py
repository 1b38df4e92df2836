"""Where a run's outputs go: executed notebooks and result files under ``_build``, and the explicit
copy of result files into the committed ``data/results/`` (``--publish``).

A chapter writes its results through ``gpa_lib.results.write_result`` into a private folder; the runner
moves them to :func:`results_dir_for` (``_build/executed/<profile>/results``) for every profile, so a
reader's run never rewrites a committed file. :func:`compare_with_committed` says per file whether it
agrees with ``data/results/`` (:mod:`gpa_lib.book.agreement`); :func:`publish_to_committed` copies.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gpa_lib.book.agreement import Agreement, compare_result_files
from gpa_lib.book.cache import CacheRecord
from gpa_lib.book.project import BookProject
from gpa_lib.results import atomic_write_bytes


def executed_dir(project: BookProject, profile: str) -> Path:
    return project.build_dir / "executed" / profile


def results_dir_for(project: BookProject, profile: str) -> Path:
    """Where a run keeps the result JSON its chapters wrote: ``_build/executed/<profile>/results``.

    Every profile: a reader's run never writes the committed ``data/results/``; ``--publish`` copies
    the results there explicitly (:func:`publish_to_committed`). The cache's "results missing" check
    looks here too.
    """
    return executed_dir(project, profile) / "results"


def committed_results_dir(project: BookProject) -> Path:
    """The committed results the book renders and a run's results are compared with."""
    return project.root / "data" / "results"


def publish_results(staged: Path, results_dir: Path) -> dict[str, str]:
    """Move the result files a chapter wrote into ``results_dir``; return file name -> sha256."""
    published = {}
    for path in sorted(staged.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            payload = path.read_bytes()
            atomic_write_bytes(results_dir / path.name, payload)
            published[path.name] = hashlib.sha256(payload).hexdigest()
    return published


def own_result_paths(project: BookProject, profile: str, results: dict[str, str]) -> set[str]:
    """The chapter's result files as paths relative to the project root (how inputs name files).

    Both the run's copy and the committed one: chapter 2 under ``gpu`` reads the committed
    ``kernel_bench_*.json`` that it also writes, and a published output of its own is no input.
    """
    own = {f"data/results/{name}" for name in results}
    try:
        rel = results_dir_for(project, profile).relative_to(project.root)
    except ValueError:
        return own
    return own | {(rel / name).as_posix() for name in results}


def owned_results(project: BookProject, profile: str, names: list[str]) -> list[str]:
    """File names of the results the named notebooks own (their cache records) that this run holds."""
    built = results_dir_for(project, profile)
    files = []
    for name in names:
        record = CacheRecord.read(executed_dir(project, profile), name)
        files += [f for f in sorted(record.results if record else {}) if (built / f).is_file()]
    return files


def compare_with_committed(project: BookProject, profile: str, names: list[str]) -> list[Agreement]:
    """Per result file the named notebooks own: does this run's copy agree with ``data/results/``?"""
    built, committed = results_dir_for(project, profile), committed_results_dir(project)
    return [
        compare_result_files(built / f, committed / f)
        for f in owned_results(project, profile, names)
    ]


def publish_to_committed(project: BookProject, profile: str, names: list[str]) -> list[Path]:
    """Copy the result files the named notebooks own from the run's folder into ``data/results/``."""
    built, committed = results_dir_for(project, profile), committed_results_dir(project)
    return [
        atomic_write_bytes(committed / f, (built / f).read_bytes())
        for f in owned_results(project, profile, names)
    ]

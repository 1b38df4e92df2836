"""The execution cache: a chapter is executed again only when something it depends on changed.

A chapter's *inputs* are hashed into a key: its source, its resolved parameters, the library code
(``gpa_lib/**``, the modules that only render excepted), the pinned environment (``constraints.txt``,
``pyproject.toml``, the Python and torch versions) and the data files it declares in ``_config.yml``
(``gpa_book: inputs:``). After a successful execution the runner writes a record beside the executed
notebook, ``_build/executed/<profile>/<name>.cache.json``: the key, its parts, the notebook's own hash
and the result files the chapter wrote. The record is written last and atomically, so a killed run
leaves either a complete record or none; a failed chapter never gets one.
"""

from __future__ import annotations

import datetime as _dt
import glob
import hashlib
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

import gpa_lib
from gpa_lib.book.project import BookProject, Notebook
from gpa_lib.results import atomic_write_json

#: Bump when the record layout or the meaning of a key part changes; every record is then stale.
CACHE_FORMAT = 1
LIBRARY_DIR = Path(gpa_lib.__file__).resolve().parent
#: Library files that only render or describe the book: editing them never changes an executed notebook.
RENDER_ONLY = frozenset(
    {
        "book/__main__.py",
        "book/render.py",
        "book/quiet.py",
        "book/parameters_page.py",
        "book/site.py",
        "book/agreement.py",
        "book/checks.py",
        "book/bibstyle.py",
    }
)
#: Files of the pinned environment, relative to the project root (a missing one hashes as absent).
ENVIRONMENT_FILES = ("constraints.txt", "pyproject.toml")
#: Why a chapter runs, by the key part that changed, in the order the summary names them.
REASONS = {
    "format": "cache format changed",
    "source": "source changed",
    "parameters": "parameters changed",
    "library": "library changed",
    "environment": "environment changed",
    "inputs": "inputs changed",
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def library_hash(library_dir: Path | None = None, render_only=RENDER_ONLY) -> str:
    """One hash over every file of the package (path and content), caches and render-only modules excepted."""
    library_dir = Path(library_dir) if library_dir is not None else LIBRARY_DIR
    digest = hashlib.sha256()
    for path in sorted(library_dir.rglob("*")):
        rel = path.relative_to(library_dir).as_posix()
        if (
            not path.is_file()
            or "__pycache__" in path.parts
            or path.suffix in {".pyc", ".so"}
            or any(part.startswith(".") for part in path.relative_to(library_dir).parts)
            or rel in render_only
        ):
            continue
        digest.update(rel.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


def environment_parts(root: Path) -> dict[str, str]:
    """The pins and the interpreter: hashes of the environment files, Python, torch and the machine type."""
    parts = {
        name: sha256_file(root / name) if (root / name).is_file() else "absent"
        for name in ENVIRONMENT_FILES
    }
    try:
        torch_version = metadata.version(
            "torch"
        )  # read from metadata: importing torch takes seconds
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    parts |= {
        "python": platform.python_version(),
        "torch": torch_version,
        "machine": platform.machine(),
    }
    return parts


def declared_inputs(project: BookProject) -> dict[str, list[str]]:
    """``gpa_book: inputs:`` of ``_config.yml``: notebook name -> globs of data files, relative to the root."""
    config = yaml.safe_load((project.root / "_config.yml").read_text()) or {}
    inputs = (config.get("gpa_book") or {}).get("inputs") or {}
    return {name: list(globs) for name, globs in inputs.items()}


def input_hashes(
    project: BookProject, notebook: Notebook, *, exclude: set[str] = frozenset()
) -> dict[str, str]:
    """Relative path -> sha256 of each file the notebook declares it reads (its own outputs excepted).

    A chapter may read files of a folder it also writes to (chapter 2 reads ``kernel_bench_*.json``, which
    its ``gpu`` profile writes); the files it wrote itself are outputs, not inputs, or it would never be
    reused.
    """
    found: dict[str, str] = {}
    for pattern in declared_inputs(project).get(notebook.name, []):
        for match in sorted(glob.glob(str(project.root / pattern), recursive=True)):
            path = Path(match)
            rel = path.relative_to(project.root).as_posix()
            if path.is_file() and rel not in exclude:
                found[rel] = sha256_file(path)
    return found


def key_parts(
    project: BookProject,
    notebook: Notebook,
    parameters: dict[str, Any],
    *,
    library: str | None = None,
    environment: dict[str, str] | None = None,
    exclude_inputs: set[str] = frozenset(),
) -> dict[str, Any]:
    """Everything a chapter's execution depends on, each part hashed or stated literally.

    ``library`` and ``environment`` may be passed in when the caller computed them once for every notebook.
    """
    return {
        "format": CACHE_FORMAT,
        "source": sha256_file(notebook.source),
        "parameters": sha256_json(parameters),
        "library": library if library is not None else library_hash(),
        "environment": environment if environment is not None else environment_parts(project.root),
        "inputs": input_hashes(project, notebook, exclude=exclude_inputs),
    }


def cache_key(parts: dict[str, Any]) -> str:
    return sha256_json(parts)


def changed_parts(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The reasons, in ``REASONS`` order, for the key parts that differ."""
    return [reason for part, reason in REASONS.items() if old.get(part) != new.get(part)]


@dataclass
class CacheRecord:
    """What the cache knows about one executed notebook (``<name>.cache.json``)."""

    name: str
    key: str
    parts: dict[str, Any]
    notebook_sha256: (
        str  # of <name>.ipynb, so a notebook replaced behind the cache's back is not reused
    )
    seconds: float  # wall time of the execution that produced the notebook
    executed_at: str
    #: result files the chapter wrote: file name -> sha256 (files in the profile's results folder)
    results: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def path_for(out_dir: Path, name: str) -> Path:
        return out_dir / f"{name}.cache.json"

    @classmethod
    def read(cls, out_dir: Path, name: str) -> CacheRecord | None:
        path = cls.path_for(out_dir, name)
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return (
                None  # absent, half-written by something else, or an older layout: not a cache hit
            )

    def write(self, out_dir: Path) -> Path:
        return atomic_write_json(self.path_for(out_dir, self.name), self.__dict__)

    @staticmethod
    def now() -> str:
        return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def why_run(
    record: CacheRecord | None,
    parts: dict[str, Any],
    executed: Path,
    results_dir: Path,
    *,
    failed_before: bool = False,
) -> str | None:
    """None when the executed notebook can be reused, else the reason it must run (for the summary)."""
    if record is None:
        return "failed last time" if failed_before else "no cache"
    if record.key != cache_key(parts):
        return ", ".join(changed_parts(record.parts, parts)) or "key changed"
    if not executed.is_file() or sha256_file(executed) != record.notebook_sha256:
        return (
            "executed notebook missing" if not executed.is_file() else "executed notebook changed"
        )
    missing = [name for name in record.results if not (results_dir / name).is_file()]
    if missing:
        return f"results missing: {', '.join(sorted(missing))}"
    return None

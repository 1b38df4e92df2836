"""Where things are: the table of contents, the notebooks, the profiles and the build folders."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from gpa_lib.book.errors import BookError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Notebook sources live in these folders; pages under ``book/`` run after the chapters.
CHAPTER_DIR = "notebooks"
PAGE_DIR = "book"
#: Toc entries that the build writes itself (gpa_lib.book.parameters_page): neither executed nor in the repo.
GENERATED_PAGES = frozenset({"book/parameters"})


@dataclass(frozen=True)
class Notebook:
    """One executable page of the book."""

    name: str  # file stem, e.g. "01_gpa_complexity"
    source: Path  # the Jupytext percent-format .py file
    toc_entry: str  # path without suffix as _toc.yml names it, e.g. "notebooks/01_gpa_complexity"
    is_summary: bool  # a page under book/ that runs after the chapters and reads their run summary

    @cached_property
    def parameters(self) -> dict[str, Any]:
        """Names and values of the cell tagged ``parameters`` (the ``full`` profile)."""
        return read_parameters(self.source)


@dataclass
class BookProject:
    """A book: ``_config.yml``, ``_toc.yml``, ``notebooks/profiles.yml`` and the pages they name."""

    root: Path = REPO_ROOT  # the project folder holding _config.yml
    build_dir: Path | None = None  # outputs; default <root>/_build
    profiles_file: Path | None = None  # default <root>/notebooks/profiles.yml
    _profiles: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.build_dir = Path(self.build_dir).resolve() if self.build_dir else self.root / "_build"
        self.profiles_file = (
            Path(self.profiles_file)
            if self.profiles_file
            else self.root / CHAPTER_DIR / "profiles.yml"
        )
        for name in ("_config.yml", "_toc.yml"):
            if not (self.root / name).exists():
                raise BookError(f"root={self.root} has no {name}: not a book project")

    # -- table of contents -------------------------------------------------------------------
    def toc_entries(self) -> list[str]:
        """Every ``file`` of ``_toc.yml`` in reading order (root first)."""
        toc = yaml.safe_load((self.root / "_toc.yml").read_text())
        entries = [toc["root"]]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "file" in node:
                    entries.append(node["file"])
                for key in ("parts", "chapters", "sections"):
                    for child in node.get(key, []) or []:
                        walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        walk({k: v for k, v in toc.items() if k != "root"})
        return [
            str(Path(e).with_suffix("")) if Path(e).suffix in {".md", ".ipynb", ".py"} else e
            for e in entries
        ]

    def notebooks(self) -> list[Notebook]:
        """The pages that are executed: toc entries with a ``.py`` source, chapters before summary pages."""
        found = []
        for entry in self.toc_entries():
            if entry in GENERATED_PAGES:
                continue
            source = self.root / f"{entry}.py"
            if source.exists():
                found.append(
                    Notebook(
                        Path(entry).name, source, entry, is_summary=entry.startswith(PAGE_DIR + "/")
                    )
                )
            elif not (self.root / f"{entry}.md").exists():
                raise BookError(
                    f"_toc.yml names {entry!r}, but neither {entry}.py nor {entry}.md exists"
                )
        return sorted(found, key=lambda nb: nb.is_summary)  # stable: toc order within each group

    def notebook(self, name: str) -> Notebook:
        by_name = {nb.name: nb for nb in self.notebooks()}
        if name not in by_name:
            raise BookError(
                f"--only {name!r} is not a notebook of this book; known: {', '.join(by_name)}"
            )
        return by_name[name]

    # -- profiles ----------------------------------------------------------------------------
    @property
    def profiles(self) -> dict[str, Any]:
        if self._profiles is None:
            if not self.profiles_file.exists():
                raise BookError(f"profiles file {self.profiles_file} does not exist")
            data = yaml.safe_load(self.profiles_file.read_text()) or {}
            if not isinstance(data.get("profiles"), dict):
                raise BookError(
                    f"{self.profiles_file.name}: expected a top-level 'profiles' mapping"
                )
            self._profiles = data
        return self._profiles

    def profile_names(self) -> list[str]:
        return list(self.profiles["profiles"])

    def timeout_s(self, profile: str) -> int:
        return int(self.profiles.get("timeout_s", {}).get(profile, 1800))

    def parameters_for(self, notebook: Notebook, profile: str) -> dict[str, Any]:
        """The validated parameter values of ``notebook`` under ``profile`` (overrides only, plus ``profile``)."""
        self.validate(profile, [notebook])
        overrides = dict((self.profiles["profiles"][profile] or {}).get(notebook.name) or {})
        overrides["profile"] = profile
        return overrides

    def validate(self, profile: str, notebooks: list[Notebook] | None = None) -> None:
        """Check the profile exists and every override names a parameter of the right type; raise BookError."""
        profiles = self.profiles["profiles"]
        if profile not in profiles:
            raise BookError(
                f"unknown profile {profile!r}; {self.profiles_file.name} defines: {', '.join(profiles)}"
            )
        notebooks = self.notebooks() if notebooks is None else notebooks
        known = {nb.name: nb for nb in self.notebooks()}
        table = profiles[profile] or {}
        for name in table:
            if name not in known:
                raise BookError(
                    f"{self.profiles_file.name}: profile {profile!r} names unknown notebook {name!r}"
                )
        for nb in notebooks:
            params = nb.parameters
            if "profile" not in params:
                raise BookError(f"{nb.name}: the parameters cell must define profile = 'full'")
            for key, value in (table.get(nb.name) or {}).items():
                if key not in params:
                    raise BookError(
                        f"{nb.name}: profile {profile!r} sets unknown parameter {key!r}; "
                        f"the parameters cell defines: {', '.join(params)}"
                    )
                if not _same_kind(params[key], value):
                    raise BookError(
                        f"{nb.name}: profile {profile!r} sets {key}={value!r} ({type(value).__name__}), "
                        f"but the parameters cell has {key}={params[key]!r} ({type(params[key]).__name__})"
                    )


def _same_kind(default: Any, value: Any) -> bool:
    """Is ``value`` an acceptable override of ``default``? bool is strict, an int may replace a float."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, list | tuple):
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


def read_parameters(source: Path) -> dict[str, Any]:
    """Parse the single cell tagged ``parameters`` of a percent-format notebook into name -> literal value."""
    import jupytext

    nb = jupytext.read(source)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise BookError(
            f"{source.stem}: expected exactly one cell tagged 'parameters', found {len(cells)}"
        )
    params: dict[str, Any] = {}
    for stmt in ast.parse(cells[0].source).body:
        if not (isinstance(stmt, ast.Assign | ast.AnnAssign)):
            raise BookError(
                f"{source.stem}: the parameters cell may hold only assignments (line {stmt.lineno})"
            )
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            raise BookError(
                f"{source.stem}: parameters cell line {stmt.lineno}: assign one plain name"
            )
        try:
            params[targets[0].id] = ast.literal_eval(stmt.value)
        except ValueError as err:
            raise BookError(
                f"{source.stem}: parameter {targets[0].id!r} must be a literal (line {stmt.lineno})"
            ) from err
    return params

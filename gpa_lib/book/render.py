"""Render the executed notebooks and the prose pages with Jupyter Book (execution off, warnings fatal)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from gpa_lib.book.errors import BookError
from gpa_lib.book.execute import executed_dir
from gpa_lib.book.parameters_page import PAGE, write_parameters_page
from gpa_lib.book.project import PAGE_DIR, BookProject
from gpa_lib.book.quiet import quiet_copy
from gpa_lib.book.site import (
    check_links,
    check_setup_cells,
    point_buttons_at_published_notebooks,
    publish_notebooks,
    staged_config,
)

#: Files copied from the project root into the staged source tree.
ROOT_FILES = ("_config.yml", "_toc.yml")
#: MathJax 3 ships in the pip package ``sphinx-mathjax-offline`` (the ``book`` extra). When
#: ``_config.yml`` sets a relative ``mathjax_path`` (``mathjax/<component>.js``, relative to ``_static``),
#: the build copies that combined component and what it loads at run time (fonts, menu, accessibility),
#: about 2.5 MB, into ``_static/mathjax``, so equations render without a network. The package's own
#: Sphinx hook would copy all 24 MB of it.
MATHJAX_DIST = "sphinx-mathjax-offline"
MATHJAX_PREFIX = "mathjax/"
MATHJAX_SUPPORT = ("output/chtml", "ui", "a11y")


def html_dir(project: BookProject, profile: str) -> Path:
    """``_build/html`` for the published profiles, ``_build/html-<profile>`` otherwise."""
    return project.build_dir / ("html" if profile == "full" else f"html-{profile}")


def stage(project: BookProject, profile: str) -> Path:
    """Assemble ``_build/src/<profile>``: the config, the prose, and each notebook's executed .ipynb."""
    src = project.build_dir / "src" / profile
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ROOT_FILES:
        shutil.copy2(project.root / name, src / name)
    (src / "_config.yml").write_text(staged_config(project))  # buttons only for a real repository
    if (project.root / PAGE_DIR).is_dir():
        shutil.copytree(
            project.root / PAGE_DIR,
            src / PAGE_DIR,
            ignore=shutil.ignore_patterns("*.py", "__pycache__"),
        )
    for (
        entry
    ) in project.toc_entries():  # prose pages outside book/, such as the data cards data/*.md
        page = project.root / f"{entry}.md"
        if page.is_file() and not (src / f"{entry}.md").exists():
            (src / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(page, src / f"{entry}.md")
    if PAGE in project.toc_entries():
        write_parameters_page(project, src)
    done = executed_dir(project, profile)
    for nb in project.notebooks():
        executed = done / f"{nb.name}.ipynb"
        if not executed.exists():
            raise BookError(
                f"notebook {nb.name} has no executed output for profile {profile!r}; "
                f"run: python -m gpa_lib.book run --profile {profile} --only {nb.name}"
            )
        quiet_copy(executed, src / f"{nb.toc_entry}.ipynb", nb.parameters)
    return src


WARNING = re.compile(r"(WARNING|ERROR|CRITICAL):")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def build_book(project: BookProject, profile: str, *, echo=print) -> Path:
    """Build the HTML book from the executed notebooks; return the path of index.html."""
    project.validate(profile)
    component = local_mathjax_component(project)
    if component:
        mathjax_source()  # fail before rendering when the package is missing
    src = stage(project, profile)
    out = project.build_dir / "jb" / profile
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build",
        str(src),
        "--path-output",
        str(out),
        "--builder",
        "html",
        "-W",
        "--keep-going",
        "-q",
    ]
    echo(f"rendering profile {profile!r} with Jupyter Book")
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    log = ANSI.sub("", proc.stdout + proc.stderr)  # Sphinx colours its warnings
    warnings = [line.strip() for line in log.splitlines() if WARNING.search(line)]
    if proc.returncode != 0 or warnings:
        for line in warnings[:20]:
            echo(line)
        first = warnings[0] if warnings else (log.strip().splitlines() or ["no output"])[-1]
        page = _page_of(first, src)
        raise BookError(
            f"book build failed{f' on {page}' if page else ''}: {_strip_path(first, src)}"
            + (f" ({len(warnings)} warnings)" if len(warnings) > 1 else "")
        )
    built = out / "_build" / "html"
    final = html_dir(project, profile)
    # Assemble the site beside the old one and swap it in only when its links check out.
    site = final.with_name(final.name + ".new")
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(built, site)
    if component:
        copy_mathjax(component, site / "_static" / "mathjax")
    publish_notebooks(project, executed_dir(project, profile), site)
    point_buttons_at_published_notebooks(project, site)
    broken = check_links(project, site) + check_setup_cells(project, site)
    if broken:
        raise BookError(
            f"{len(broken)} launch or download link(s) point at no file: {broken[0]}"
            + (f" (and {len(broken) - 1} more)" if len(broken) > 1 else "")
            + f"; the site is left in {site}"
        )
    if final.exists():
        shutil.rmtree(final)
    os.replace(site, final)
    index = final / "index.html"
    echo(f"book: {index}")
    return index


def mathjax_source() -> Path:
    """The folder of MathJax files inside the installed ``sphinx-mathjax-offline``; BookError if absent."""
    from importlib import metadata

    try:
        dist = metadata.distribution(MATHJAX_DIST)
    except metadata.PackageNotFoundError as err:
        raise BookError(
            f"{MATHJAX_DIST} is not installed, and the book serves MathJax itself; "
            'install the book extra: pip install -c constraints.txt -e ".[book]"'
        ) from err
    return Path(dist.locate_file("sphinx-mathjax-offline/static/mathjax"))


def local_mathjax_component(project: BookProject) -> str | None:
    """The MathJax file ``_config.yml`` serves from ``_static`` (e.g. ``tex-chtml-full.js``), or None."""
    config = yaml.safe_load((project.root / "_config.yml").read_text()) or {}
    path = str(((config.get("sphinx") or {}).get("config") or {}).get("mathjax_path", ""))
    if not path.startswith(MATHJAX_PREFIX) or "://" in path:
        return None  # Sphinx's default (a CDN) or a URL the config chose
    return path[len(MATHJAX_PREFIX) :]


def copy_mathjax(component: str, target: Path) -> None:
    source = mathjax_source()
    if not (source / component).is_file():
        raise BookError(
            f"mathjax_path={MATHJAX_PREFIX}{component} in _config.yml: {MATHJAX_DIST} has no {component}; "
            f"it ships: {', '.join(sorted(p.name for p in source.glob('*.js')))}"
        )
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / component, target / component)
    for name in MATHJAX_SUPPORT:
        shutil.copytree(source / name, target / name, dirs_exist_ok=True)


def _page_of(line: str, src: Path) -> str | None:
    match = re.search(re.escape(str(src)) + r"/([^:]+)", line)
    return match.group(1) if match else None


def _strip_path(line: str, src: Path) -> str:
    return line.replace(str(src) + "/", "")

"""python -m gpa_lib.book run|build|clean --profile NAME [--only NOTEBOOK] [--force] [--publish] [--jobs N]

`run` executes only the notebooks whose inputs changed since their last successful execution (source,
parameters, library, pinned environment, declared data files); `--force` executes them all. Results
stay under _build/executed/<profile>/results and are compared with data/results/; `--publish` copies
them there.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from gpa_lib.book.errors import BookError
from gpa_lib.book.execute import executed_dir, run_notebooks
from gpa_lib.book.project import REPO_ROOT, BookProject
from gpa_lib.book.quiet import GLUE_TAG, tag_glue_only_cells
from gpa_lib.book.render import build_book, html_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpa_lib.book", description=__doc__)
    parser.add_argument(
        "command",
        choices=["run", "build", "all", "clean", "quiet"],
        help="run: execute notebooks; build: render the book; all: both; clean: delete outputs; "
        "quiet: tag glue-only cells remove-cell in the sources",
    )
    parser.add_argument(
        "--profile",
        default="full",
        help="parameter set from notebooks/profiles.yml (default: full)",
    )
    parser.add_argument("--only", metavar="NAME", help="execute only this notebook (file stem)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="execute even the notebooks whose cached execution is up to date",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="run: also copy the chapters' result files and book_run_<profile>.json into "
        "data/results/ (the committed results; `make results`); without it nothing there is written",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks executed in parallel (default 1)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="quiet: list untagged glue-only cells and exit 1 if any, without editing",
    )
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="book project folder (default: this repo)"
    )
    parser.add_argument(
        "--build-dir", type=Path, default=None, help="output folder (default: ROOT/_build)"
    )
    args = parser.parse_args(argv)
    try:
        project = BookProject(args.root, build_dir=args.build_dir)
        if args.command == "quiet":
            return quiet_sources(project, check=args.check)
        if args.command == "clean":
            for path in (
                executed_dir(project, args.profile),
                html_dir(project, args.profile),
                html_dir(project, args.profile).with_name(
                    html_dir(project, args.profile).name + ".new"
                ),
                project.build_dir / "src" / args.profile,
                project.build_dir / "jb" / args.profile,
            ):
                shutil.rmtree(path, ignore_errors=True)
            print(f"removed the {args.profile!r} outputs under {project.build_dir}")
            return 0
        if args.command in ("run", "all"):
            run_notebooks(
                project,
                args.profile,
                only=args.only,
                jobs=args.jobs,
                force=args.force,
                publish=args.publish,
            )
        if args.command in ("build", "all"):
            build_book(project, args.profile)
    except BookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def quiet_sources(project: BookProject, *, check: bool) -> int:
    """Tag (or with ``check`` only list) the glue-only cells of every executed page."""
    found = 0
    for nb in project.notebooks():
        cells = tag_glue_only_cells(nb.source, write=not check)
        found += len(cells)
        for index in cells:
            verb = "untagged glue-only" if check else f"tagged {GLUE_TAG}:"
            print(f"{nb.source.relative_to(project.root)}: {verb} cell {index}")
    print(f"{found} glue-only cell(s) {'to tag' if check else 'tagged'}")
    return 1 if check and found else 0


if __name__ == "__main__":
    sys.exit(main())

"""python -m gpa_lib.book run|build|clean --profile NAME [--only NOTEBOOK] [--force] [--jobs N] [--root DIR]

`run` executes only the notebooks whose inputs changed since their last successful execution (source,
parameters, library, pinned environment, declared data files); `--force` executes them all.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from gpa_lib.book.errors import BookError
from gpa_lib.book.execute import executed_dir, run_notebooks
from gpa_lib.book.project import REPO_ROOT, BookProject
from gpa_lib.book.render import build_book, html_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpa_lib.book", description=__doc__)
    parser.add_argument(
        "command",
        choices=["run", "build", "all", "clean"],
        help="run: execute notebooks; build: render the book; all: both; clean: delete outputs",
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
        "--jobs", type=int, default=1, help="notebooks executed in parallel (default 1)"
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
        if args.command == "clean":
            for path in (
                executed_dir(project, args.profile),
                html_dir(project, args.profile),
                project.build_dir / "src" / args.profile,
                project.build_dir / "jb" / args.profile,
            ):
                shutil.rmtree(path, ignore_errors=True)
            print(f"removed the {args.profile!r} outputs under {project.build_dir}")
            return 0
        if args.command in ("run", "all"):
            run_notebooks(project, args.profile, only=args.only, jobs=args.jobs, force=args.force)
        if args.command in ("build", "all"):
            build_book(project, args.profile)
    except BookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The notebook pipeline: validate profiles, execute chapters with papermill, render with Jupyter Book.

Command line: ``python -m gpa_lib.book run|build|clean --profile smoke|full|gpu [--only NAME] [--jobs N]``;
``run --publish`` also copies the run's results into the committed ``data/results/``.
"""

from gpa_lib.book.errors import BookError
from gpa_lib.book.execute import run_notebooks
from gpa_lib.book.glue import glued_values
from gpa_lib.book.project import BookProject
from gpa_lib.book.render import build_book

__all__ = ["BookError", "BookProject", "build_book", "glued_values", "run_notebooks"]

"""The book's figure style reaches every executed chapter through the runner, with no line in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import pytest

from gpa_lib.book import glued_values
from gpa_lib.book.__main__ import main
from gpa_lib.book.style import RC_FILE

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"
PROBE = """
# %%
import matplotlib
from myst_nb import glue

glue("tiny_dpi", float(matplotlib.rcParams["figure.dpi"]), display=False)
glue("tiny_width_in", float(matplotlib.rcParams["figure.figsize"][0]), display=False)
"""


def test_rc_file_sets_size_and_dpi_for_the_text_column():
    rc = matplotlib.rc_params_from_file(RC_FILE, use_default_template=False)
    width_px = rc["figure.figsize"][0] * rc["figure.dpi"]
    assert 700 <= width_px <= 772  # fills the 772 px column without being scaled down


@pytest.mark.notebooks
def test_runner_applies_the_style(tmp_path: Path, capsys):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    source = root / "notebooks" / "01_tiny.py"
    source.write_text(source.read_text() + PROBE)
    assert main(["run", "--profile", "smoke", "--root", str(root)]) == 0, capsys.readouterr()
    values = glued_values(root / "_build" / "executed" / "smoke" / "01_tiny.ipynb")
    rc = matplotlib.rc_params_from_file(RC_FILE, use_default_template=False)
    assert float(values["tiny_dpi"]) == rc["figure.dpi"]
    assert float(values["tiny_width_in"]) == rc["figure.figsize"][0]

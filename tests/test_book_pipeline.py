"""The notebook pipeline on a tiny fixture book: run, build, and every way it must fail loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpa_lib.book import BookError, BookProject, glued_values
from gpa_lib.book.__main__ import main
from gpa_lib.book.project import read_parameters

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"
pytestmark = pytest.mark.notebooks


@pytest.fixture
def book(tmp_path: Path) -> Path:
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    return root


def set_profile(root: Path, text: str) -> None:
    (root / "notebooks" / "profiles.yml").write_text(text)


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_run_and_build_render_glued_values(book: Path, capsys):
    code, out = run_cli(capsys, "all", "--profile", "smoke", "--root", str(book))
    assert code == 0, out
    assert "01_tiny" in out and "total" in out  # the summary table
    values = glued_values(book / "_build" / "executed" / "smoke" / "01_tiny.ipynb")
    assert values["tiny_total"] == "20.0"  # sum(range(5)) * 2 from the smoke profile
    html = (book / "_build" / "html-smoke" / "notebooks" / "01_tiny.html").read_text()
    assert 'The total is <span class="pasted-text">20.0</span>' in html


def test_glued_values_identical_across_runs(book: Path, tmp_path: Path, capsys):
    first, second = tmp_path / "b1", tmp_path / "b2"
    for build in (first, second):
        code, out = run_cli(
            capsys, "run", "--profile", "smoke", "--root", str(book), "--build-dir", str(build)
        )
        assert code == 0, out
    a = glued_values(first / "executed" / "smoke" / "01_tiny.ipynb")
    b = glued_values(second / "executed" / "smoke" / "01_tiny.ipynb")
    assert a == b and set(a) == {"tiny_total", "tiny_noise"}


def test_failing_notebook_is_named_with_cell(book: Path, capsys):
    set_profile(book, "profiles:\n  smoke:\n    01_tiny: {fail: true}\n")
    code, out = run_cli(capsys, "run", "--profile", "smoke", "--root", str(book))
    assert code == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: notebook 01_tiny failed: cell 2")
    assert "RuntimeError: asked to fail" in last
    # the failed output is kept for inspection, and no stale success is left behind
    assert (book / "_build" / "executed" / "smoke" / "01_tiny.failed.ipynb").exists()
    assert not (book / "_build" / "executed" / "smoke" / "01_tiny.ipynb").exists()


def test_timeout_is_reported(book: Path, capsys):
    set_profile(book, "timeout_s: {smoke: 3}\nprofiles:\n  smoke:\n    01_tiny: {sleep_s: 60}\n")
    code, out = run_cli(capsys, "run", "--profile", "smoke", "--root", str(book))
    assert code == 1
    assert "error: notebook 01_tiny timeout: exceeded the smoke timeout of 3 s" in out


def test_missing_glue_key_fails_the_build(book: Path, capsys):
    source = book / "notebooks" / "01_tiny.py"
    source.write_text(
        source.read_text() + "\n# %% [markdown]\n# Missing: {glue:text}`no_such_key`\n"
    )
    code, out = run_cli(capsys, "all", "--profile", "smoke", "--root", str(book))
    assert code == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: book build failed on notebooks/01_tiny.ipynb")
    assert "no_such_key" in last


def test_unknown_profile_stops_before_running(book: Path, capsys):
    code, out = run_cli(capsys, "run", "--profile", "nope", "--root", str(book))
    assert code == 1
    assert "error: unknown profile 'nope'; profiles.yml defines: smoke, full" in out
    assert not (book / "_build" / "executed" / "nope").exists()


def test_unknown_parameter_names_notebook_and_parameter(book: Path, capsys):
    set_profile(book, "profiles:\n  smoke:\n    01_tiny: {n_iterations: 3}\n")
    code, out = run_cli(capsys, "run", "--profile", "smoke", "--root", str(book))
    assert code == 1
    assert "error: 01_tiny: profile 'smoke' sets unknown parameter 'n_iterations'" in out


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("{n: '5'}", "sets n='5' (str), but the parameters cell has n=10 (int)"),
        ("{n: 2.5}", "sets n=2.5 (float), but the parameters cell has n=10 (int)"),
        ("{fail: 1}", "sets fail=1 (int), but the parameters cell has fail=False (bool)"),
    ],
)
def test_parameter_of_wrong_type(book: Path, capsys, override: str, expected: str):
    set_profile(book, f"profiles:\n  smoke:\n    01_tiny: {override}\n")
    code, out = run_cli(capsys, "run", "--profile", "smoke", "--root", str(book))
    assert code == 1
    assert f"error: 01_tiny: profile 'smoke' {expected}" in out


def test_int_may_override_float(book: Path):
    project = BookProject(book)
    nb = project.notebook("01_tiny")
    assert project.parameters_for(nb, "smoke") == {"n": 5, "scale": 2, "profile": "smoke"}


def test_unknown_notebook_in_profile(book: Path, capsys):
    set_profile(book, "profiles:\n  smoke:\n    02_missing: {n: 1}\n")
    code, out = run_cli(capsys, "run", "--profile", "smoke", "--root", str(book))
    assert code == 1
    assert "profile 'smoke' names unknown notebook '02_missing'" in out


def test_only_unknown_notebook(book: Path, capsys):
    code, out = run_cli(
        capsys, "run", "--profile", "smoke", "--only", "99_none", "--root", str(book)
    )
    assert code == 1
    assert "--only '99_none' is not a notebook of this book; known: 01_tiny" in out


def test_build_without_run_says_what_to_run(book: Path, capsys):
    code, out = run_cli(capsys, "build", "--profile", "smoke", "--root", str(book))
    assert code == 1
    assert "run: python -m gpa_lib.book run --profile smoke --only 01_tiny" in out


def test_parameters_cell_rules(tmp_path: Path):
    header = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     name: python3\n# ---\n\n"
    two = tmp_path / "two.py"
    two.write_text(header + '# %% tags=["parameters"]\na = 1\n\n# %% tags=["parameters"]\nb = 2\n')
    with pytest.raises(BookError, match="expected exactly one cell tagged 'parameters', found 2"):
        read_parameters(two)
    call = tmp_path / "call.py"
    call.write_text(header + '# %% tags=["parameters"]\na = len([1])\n')
    with pytest.raises(BookError, match="parameter 'a' must be a literal"):
        read_parameters(call)


def test_not_a_book(tmp_path: Path, capsys):
    code, out = run_cli(capsys, "run", "--root", str(tmp_path))
    assert code == 1
    assert "has no _config.yml: not a book project" in out


def test_every_profile_of_the_real_book_validates():
    """The gpu profile cannot run here; its parameters are still checked on every commit."""
    from gpa_lib.pose.config import TRAIN_PRESETS

    project = BookProject()
    assert set(project.profile_names()) == {"smoke", "full", "gpu"}
    for profile in project.profile_names():
        project.validate(profile)
        pose = project.parameters_for(project.notebook("03_pose_morphing"), profile)
        scale = pose.get("scale", project.notebook("03_pose_morphing").parameters["scale"])
        assert f"gpa-{scale}" in TRAIN_PRESETS

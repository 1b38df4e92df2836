"""The execution cache: the key moves with each input and only then; a tiny book reuses, re-runs, resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpa_lib.book import BookProject
from gpa_lib.book import cache as book_cache
from gpa_lib.book.__main__ import main
from gpa_lib.book.cache import CacheRecord, cache_key, key_parts, library_hash

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"
REPO = Path(__file__).resolve().parents[1]

WRITER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
profile = "full"
sleep_s = 0.0

# %%
import time

from gpa_lib.results import write_result

time.sleep(sleep_s)
write_result("tiny_result", {"answer": 42}, profile=profile)
"""


@pytest.fixture
def book(tmp_path: Path) -> Path:
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    return root


def add_writer(root: Path, smoke_sleep_s: float = 0.0) -> None:
    """A second chapter that writes a result file through gpa_lib.results.write_result."""
    (root / "notebooks" / "02_writer.py").write_text(WRITER)
    toc = root / "_toc.yml"
    toc.write_text(toc.read_text() + "  - file: notebooks/02_writer\n")
    profiles = root / "notebooks" / "profiles.yml"
    profiles.write_text(
        profiles.read_text().replace(
            "  full: {}", f"    02_writer:\n      sleep_s: {smoke_sleep_s}\n  full: {{}}"
        )
    )


def run_cli(capsys, root: Path, *args: str) -> tuple[int, str]:
    code = main(["run", "--profile", "smoke", "--root", str(root), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def table_row(out: str, name: str) -> str:
    """The summary table's line for ``name`` (the last line that starts with it)."""
    return [line for line in out.splitlines() if line.startswith(name + " ")][-1]


# -- the key ---------------------------------------------------------------------------------


def parts_of(root: Path, **overrides) -> dict:
    project = BookProject(root)
    nb = project.notebook("01_tiny")
    params = project.parameters_for(nb, "smoke")
    return key_parts(project, nb, params, **overrides)


def test_key_is_stable_when_nothing_changes(book: Path):
    first = parts_of(book)
    source = book / "notebooks" / "01_tiny.py"
    source.write_text(source.read_text())  # a new mtime, the same bytes
    assert cache_key(parts_of(book)) == cache_key(first)


@pytest.mark.parametrize(
    ("edit", "part"),
    [
        (lambda root: _append(root / "notebooks" / "01_tiny.py", "\n# %%\n1\n"), "source"),
        (
            lambda root: (root / "notebooks" / "profiles.yml").write_text(
                "profiles:\n  smoke:\n    01_tiny: {n: 6}\n  full: {}\n"
            ),
            "parameters",
        ),
        (lambda root: (root / "constraints.txt").write_text("numpy==2.0\n"), "environment"),
        (lambda root: (root / "pyproject.toml").write_text("[project]\n"), "environment"),
    ],
    ids=["source", "parameters", "constraints", "pyproject"],
)
def test_key_changes_with_each_input(book: Path, edit, part: str):
    before = parts_of(book)
    edit(book)
    after = parts_of(book)
    assert cache_key(after) != cache_key(before)
    assert book_cache.changed_parts(before, after) == [book_cache.REASONS[part]]


def test_key_changes_with_python_and_torch(book: Path, monkeypatch):
    before = parts_of(book)
    monkeypatch.setattr(book_cache.platform, "python_version", lambda: "3.99.0")
    assert book_cache.changed_parts(before, parts_of(book)) == ["environment changed"]
    monkeypatch.undo()
    monkeypatch.setattr(book_cache.metadata, "version", lambda name: "0.0.1")
    assert book_cache.changed_parts(before, parts_of(book)) == ["environment changed"]


def test_library_hash_covers_code_and_package_data_but_not_caches(tmp_path: Path):
    lib = tmp_path / "lib"
    (lib / "attention" / "csrc").mkdir(parents=True)
    (lib / "book").mkdir()
    (lib / "__init__.py").write_text("")
    (lib / "attention" / "csrc" / "kernel.cu").write_text("// v1\n")
    (lib / "book" / "render.py").write_text("# render\n")
    base = library_hash(lib)
    assert library_hash(lib) == base
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (lib / "book" / "render.py").write_text("# only renders: no re-execution\n")
    assert library_hash(lib) == base
    (lib / "attention" / "csrc" / "kernel.cu").write_text("// v2\n")
    assert library_hash(lib) != base
    changed = library_hash(lib)
    (lib / "new_module.py").write_text("")
    assert library_hash(lib) != changed


def test_library_change_is_named(book: Path, tmp_path: Path, monkeypatch):
    before = parts_of(book)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "__init__.py").write_text("x = 1\n")
    monkeypatch.setattr(book_cache, "LIBRARY_DIR", lib)
    assert book_cache.changed_parts(before, parts_of(book)) == ["library changed"]


def test_declared_inputs_enter_the_key(book: Path):
    config = book / "_config.yml"
    config.write_text(config.read_text() + "gpa_book:\n  inputs:\n    01_tiny: ['data/*.json']\n")
    (book / "data").mkdir()
    before = parts_of(book)
    (book / "data" / "bench.json").write_text("{}")
    after = parts_of(book)
    assert after["inputs"] == {"data/bench.json": book_cache.sha256_file(book / "data/bench.json")}
    assert book_cache.changed_parts(before, after) == ["inputs changed"]
    # a file the chapter wrote itself is an output, not an input
    assert parts_of(book, exclude_inputs={"data/bench.json"})["inputs"] == {}


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


# -- end to end on the tiny book ---------------------------------------------------------------


def test_second_run_reuses_and_an_edit_reruns(book: Path, capsys):
    code, out = run_cli(capsys, book)
    assert code == 0, out
    assert "ok       no cache" in table_row(out, "01_tiny")
    executed = book / "_build" / "executed" / "smoke" / "01_tiny.ipynb"
    first_bytes = executed.read_bytes()

    code, out = run_cli(capsys, book)
    assert code == 0, out
    assert "reused   unchanged (executed in" in table_row(out, "01_tiny")
    assert "0 executed, 1 reused" in out
    assert executed.read_bytes() == first_bytes

    _append(book / "notebooks" / "01_tiny.py", "\n# %% [markdown]\n# One more sentence.\n")
    code, out = run_cli(capsys, book)
    assert code == 0, out
    assert "ok       source changed" in table_row(out, "01_tiny")

    code, out = run_cli(capsys, book, "--force")
    assert "ok       --force" in table_row(out, "01_tiny")
    code, out = run_cli(capsys, book, "--only", "01_tiny")
    assert "reused" in table_row(out, "01_tiny")


def test_failure_is_never_cached(book: Path, capsys):
    profiles = book / "notebooks" / "profiles.yml"
    profiles.write_text("profiles:\n  smoke:\n    01_tiny: {fail: true}\n  full: {}\n")
    out_dir = book / "_build" / "executed" / "smoke"
    for expected in ("no cache", "failed last time"):
        code, out = run_cli(capsys, book)
        assert code == 1
        row = table_row(out, "01_tiny")
        assert "failed" in row and expected in row and "asked to fail" in row
        assert not CacheRecord.path_for(out_dir, "01_tiny").exists()
    profiles.write_text("profiles:\n  smoke:\n    01_tiny: {fail: false}\n  full: {}\n")
    code, out = run_cli(capsys, book)
    assert code == 0 and "failed last time" in table_row(out, "01_tiny")
    assert not (out_dir / "01_tiny.failed.ipynb").exists()
    summary = json.loads((out_dir / "run_summary.json").read_text())
    assert [e["status"] for e in summary["notebooks"]] == ["ok"]


def test_results_are_owned_and_a_missing_one_reruns(book: Path, capsys):
    add_writer(book)
    out_dir = book / "_build" / "executed" / "smoke"
    code, out = run_cli(capsys, book)
    assert code == 0, out
    result = out_dir / "results" / "tiny_result.json"
    assert json.loads(result.read_text())["answer"] == 42
    record = CacheRecord.read(out_dir, "02_writer")
    assert set(record.results) == {"tiny_result.json"}
    assert CacheRecord.read(out_dir, "01_tiny").results == {}

    code, out = run_cli(capsys, book)
    assert "0 executed, 2 reused" in out
    result.unlink()
    code, out = run_cli(capsys, book)
    assert code == 0, out
    assert "reused" in table_row(out, "01_tiny")
    assert "results missing: tiny_result.json" in table_row(out, "02_writer")
    assert result.exists()


def test_killed_run_resumes_with_the_finished_chapters(book: Path, capsys):
    add_writer(book, smoke_sleep_s=120.0)
    out_dir = book / "_build" / "executed" / "smoke"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpa_lib.book", "run", "--profile", "smoke", "--root", str(book)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not CacheRecord.path_for(out_dir, "01_tiny").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "01_tiny never finished"
            time.sleep(0.2)
        time.sleep(1.0)  # 02_writer is now sleeping inside its kernel
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not CacheRecord.path_for(out_dir, "02_writer").exists()
    profiles = book / "notebooks" / "profiles.yml"
    # resume with the writer made quick (its parameters change, so it would run anyway)
    profiles.write_text(profiles.read_text().replace("sleep_s: 120.0", "sleep_s: 0.0"))
    code, out = run_cli(capsys, book)
    assert code == 0, out
    assert "reused" in table_row(out, "01_tiny")
    assert "ok       no cache" in table_row(out, "02_writer")


def test_every_stored_result_a_chapter_reads_is_a_declared_input(smoke_build):
    """A chapter that renders a committed result must re-execute when that file changes: every file
    under data/results that a chapter opened in the smoke run (recorded by gpa_lib.read_log, whatever
    library function opened it) is declared among its inputs in _config.yml, or is its own output."""
    import fnmatch
    import json

    from gpa_lib.book.execute import executed_dir, reads_path

    project, _ = smoke_build
    declared = book_cache.declared_inputs(project)
    out_dir = executed_dir(project, "smoke")
    for notebook in project.notebooks():
        path = reads_path(out_dir, notebook.name)
        assert path.exists(), f"the runner recorded no reads for {notebook.name}"
        record = book_cache.CacheRecord.read(out_dir, notebook.name)
        own = {Path(p).name for p in (record.results if record else [])}
        # a chapter's own results are named by its prefix (ch5_claims.json): they are outputs
        prefix = f"ch{int(notebook.name[:2])}_" if notebook.name[:2].isdigit() else None
        globs = declared.get(notebook.name, [])
        for read in json.loads(path.read_text()):
            if Path(read).name in own or (prefix and Path(read).name.startswith(prefix)):
                continue
            assert any(fnmatch.fnmatch(read, g) for g in globs), (
                f"{notebook.name} reads {read}, which _config.yml does not declare as an input"
            )

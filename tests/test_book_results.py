"""A reader's run never writes the committed results; it says whether its own agree with them.

A fake chapter in a copy of the tiny book writes a result through ``write_result``; the copy has a
committed ``data/results/`` of its own. The run keeps its result under ``_build``, reports match or
mismatch per file, and only ``--publish`` copies it into ``data/results/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpa_lib.book.__main__ import main
from gpa_lib.book.agreement import compare_result_files
from gpa_lib.book.execute import RUN_SUMMARY_ENV

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_book"
pytestmark = pytest.mark.notebooks

WRITER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
profile = "full"
answer = 0.1

# %%
from gpa_lib.results import write_result

write_result("tiny_result", {"answer": answer * 3, "fit_time_s": 1.0}, profile=profile)
"""


def committed(answer: float, fit_time_s: float = 9.0, profile: str = "full") -> str:
    body = {"answer": answer, "fit_time_s": fit_time_s, "provenance": {"profile": profile}}
    return json.dumps(body, indent=2) + "\n"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    (root / "notebooks" / "02_writer.py").write_text(WRITER)
    toc = root / "_toc.yml"
    toc.write_text(toc.read_text() + "  - file: notebooks/02_writer\n")
    (root / "data" / "results").mkdir(parents=True)
    return root


def run(capsys, root: Path, *args: str) -> tuple[int, str]:
    code = main(["run", "--profile", "full", "--root", str(root), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def row(out: str, name: str) -> str:
    return [line for line in out.splitlines() if line.startswith(name + " ")][-1]


def test_run_leaves_committed_results_alone_and_reports_agreement(book: Path, capsys):
    stored = book / "data" / "results" / "tiny_result.json"
    # 0.1 * 3 is 0.30000000000000004: float noise, within the tolerance; the timing is ignored
    stored.write_text(committed(0.3))
    before = stored.read_bytes()
    code, out = run(capsys, book)
    assert code == 0, out
    assert stored.read_bytes() == before
    assert sorted(p.name for p in stored.parent.iterdir()) == ["tiny_result.json"]  # no book_run_*
    built = book / "_build" / "executed" / "full" / "results" / "tiny_result.json"
    assert json.loads(built.read_text())["answer"] == pytest.approx(0.3)
    assert "match (1 values within rtol 1e-06; 1 timings ignored)" in row(out, "tiny_result.json")

    stored.write_text(committed(0.31))
    code, out = run(capsys, book)  # reused: the comparison is made again, against the new file
    assert code == 0, out
    assert "0 executed" in out
    assert "DIFFERS: answer: 0.30000000000000004 vs 0.31" in row(out, "tiny_result.json")
    summary = json.loads((book / "_build" / "executed" / "full" / "last_run.json").read_text())
    assert summary["results"][0]["status"] == "differs"
    assert stored.read_text() == committed(0.31)


def test_publish_copies_results_and_the_run_record(book: Path, capsys):
    code, out = run(capsys, book)
    assert "new: no committed tiny_result.json" in row(out, "tiny_result.json")
    code, out = run(capsys, book, "--publish")
    assert code == 0, out
    assert "published data/results/tiny_result.json" in out
    stored = json.loads((book / "data" / "results" / "tiny_result.json").read_text())
    assert stored["answer"] == pytest.approx(0.3)
    assert (book / "data" / "results" / "book_run_full.json").is_file()
    code, out = run(capsys, book)
    assert "match" in row(out, "tiny_result.json")


def test_smoke_cannot_publish(book: Path, capsys):
    code = main(["run", "--profile", "smoke", "--root", str(book), "--publish"])
    assert code == 1
    assert "the smoke profile's tiny runs are not results" in capsys.readouterr().err
    assert not (book / "_build").exists()


def test_a_deleted_result_reruns_its_chapter_whatever_data_results_holds(book: Path, capsys):
    """The cache's "results missing" check looks in the run's own folder, not data/results/."""
    (book / "data" / "results" / "tiny_result.json").write_text(committed(0.3))
    run(capsys, book)
    (book / "_build" / "executed" / "full" / "results" / "tiny_result.json").unlink()
    code, out = run(capsys, book)
    assert "results missing: tiny_result.json" in row(out, "02_writer")


@pytest.mark.parametrize(
    ("old", "status"),
    [
        ({"a": [1.0, 2.0], "where": "x"}, "match"),
        ({"a": [1.0, 2.1], "where": "x"}, "differs"),
        ({"a": [1.0], "where": "x"}, "differs"),
        ({"a": [1.0, 2.0], "b": True}, "differs"),
        ({"a": [1.0, 2.0], "where": "x", "rows": [{"ms": 9.0}]}, "match"),  # a timing column
    ],
)
def test_agreement_rule(tmp_path: Path, old: dict, status: str):
    new = {"a": [1.0, 2.0 + 1e-9], "where": "y", "provenance": {"profile": "full", "date": 1}}
    if "rows" in old:
        new = new | {"rows": [{"ms": 16.0}]}
    (tmp_path / "new.json").write_text(json.dumps(new))
    (tmp_path / "old.json").write_text(json.dumps(old | {"provenance": {"profile": "full"}}))
    assert compare_result_files(tmp_path / "new.json", tmp_path / "old.json").status == status


def test_another_profile_is_not_compared(tmp_path: Path):
    (tmp_path / "new.json").write_text(json.dumps({"a": 1, "provenance": {"profile": "smoke"}}))
    (tmp_path / "old.json").write_text(json.dumps({"a": 2, "provenance": {"profile": "full"}}))
    assert compare_result_files(tmp_path / "new.json", tmp_path / "old.json").status == (
        "not compared"
    )


def test_run_summary_reaches_pages_by_environment():
    """The reproduce page reads the summary's path from the variable the runner sets."""
    source = (Path(__file__).resolve().parents[1] / "book" / "reproduce.py").read_text()
    assert f'os.environ.get("{RUN_SUMMARY_ENV}"' in source

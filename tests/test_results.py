"""Result files: atomic JSON with provenance; the commit is dirty only when code changed."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from gpa_lib import results
from gpa_lib.results import git_commit, project_commit, provenance, read_result, write_result


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "data" / "results").mkdir(parents=True)
    (tmp_path / "data" / "results" / "r.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    return tmp_path


def test_commit_is_clean_when_only_results_changed(repo: Path):
    head = _git(repo, "rev-parse", "HEAD")
    assert git_commit(repo) == head
    (repo / "data" / "results" / "r.json").write_text('{"new": 1}\n')  # a run rewrote its results
    assert git_commit(repo) == head
    (repo / "code.py").write_text("x = 2\n")
    assert git_commit(repo) == head + "-dirty"


def test_outside_git_is_unknown(tmp_path: Path):
    assert git_commit(tmp_path / "nowhere") == "unknown"


def test_a_folder_inside_another_repository_has_no_commit(repo: Path, monkeypatch):
    # The GPU machine's copy of the tree, without its .git, inside some other checkout: the
    # enclosing HEAD is not the project's commit.
    monkeypatch.delenv(results.SOURCE_COMMIT_ENV, raising=False)
    copy = repo / "copy"
    (copy / "gpa_lib").mkdir(parents=True)
    assert git_commit(copy) == "unknown"
    assert project_commit(copy) == "unknown"
    assert project_commit(repo) == _git(repo, "rev-parse", "HEAD")


def test_the_named_source_commit_wins(repo: Path, monkeypatch):
    monkeypatch.setenv(results.SOURCE_COMMIT_ENV, "7da81635d2224e2456ef03d655c21fb1991d3c9b")
    assert project_commit(repo / "copy") == "7da81635d2224e2456ef03d655c21fb1991d3c9b"
    assert project_commit(repo) == "7da81635d2224e2456ef03d655c21fb1991d3c9b"
    assert git_commit(repo) == _git(repo, "rev-parse", "HEAD")  # the repository's own HEAD
    assert provenance()["commit"] == "7da81635d2224e2456ef03d655c21fb1991d3c9b"
    monkeypatch.setenv(results.SOURCE_COMMIT_ENV, "")  # empty counts as not set
    assert project_commit(repo) == _git(repo, "rev-parse", "HEAD")


def test_the_project_root_reads_its_own_head_only(repo: Path, monkeypatch):
    monkeypatch.delenv(results.SOURCE_COMMIT_ENV, raising=False)
    nested = repo / "copy"
    nested.mkdir()
    assert git_commit(nested) == "unknown"
    _git(nested, "init", "-q")  # a repository of its own at that root: no commit yet
    assert git_commit(nested) == "unknown"


def test_write_result_is_readable_json_with_provenance(tmp_path: Path):
    path = write_result(
        "thing", {"value": 1.5}, profile="full", wall_time_s=2.0, results_dir=tmp_path
    )
    data = json.loads(path.read_text())
    assert data["value"] == 1.5
    assert data["provenance"]["profile"] == "full" and data["provenance"]["wall_time_s"] == 2.0
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert read_result("thing", results_dir=tmp_path)["value"] == 1.5
    assert [p.name for p in tmp_path.iterdir()] == ["thing.json"]  # no temporary file left


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b'{"value": 1.5, "provenance": {"com', r"not valid JSON \(line 1, column"),
        (b'\xef\xbb\xbf{"provenance": {}}', "byte-order mark"),
        (b'{"name": "\xff\xfe"}', r"not UTF-8 \(byte 10\)"),
        (b"[1, 2, 3]", "no result object with a 'provenance' block"),
    ],
    ids=["empty", "cut", "bom", "not-utf8", "not-a-result"],
)
def test_a_hostile_result_file_is_named(tmp_path, content, message):
    (tmp_path / "thing.json").write_bytes(content)
    with pytest.raises(ValueError, match=message) as caught:
        read_result("thing", results_dir=tmp_path)
    assert str(tmp_path / "thing.json") in str(caught.value)

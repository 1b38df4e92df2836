"""The book runner's record of the committed results a chapter opens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gpa_lib.read_log import read_log

SCRIPT = """
import json, pathlib, sys
from gpa_lib.read_log import install
watched = pathlib.Path(sys.argv[1])
install(pathlib.Path(sys.argv[2]), watched)
(watched / "a.json").read_text()                 # a read: logged
(watched / "a.json").read_text()                 # the same again: logged once
with open(watched / "b.json", "w") as f:         # a write: not logged
    f.write("{}")
sorted(watched.glob("*.json"))[1].read_bytes()   # found by a glob, then read: logged
(pathlib.Path(sys.argv[3])).read_text()          # outside the folder: not logged
"""


def test_reads_under_the_watched_folder_are_logged_once(tmp_path):
    watched, log = tmp_path / "results", tmp_path / "reads.log"
    watched.mkdir()
    (watched / "a.json").write_text("{}")
    other = tmp_path / "other.txt"
    other.write_text("x")
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "GPA_BOOK_READ_LOG"}
    env["PYTHONPATH"] = str(root)
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(watched), str(log), str(other)], check=True, env=env
    )
    assert read_log(log) == [str(watched / "a.json"), str(watched / "b.json")]
    assert log.read_text().count("a.json") == 1
    assert read_log(tmp_path / "missing.log") == []


def test_importing_gpa_lib_installs_the_log_only_when_asked(tmp_path):
    log = tmp_path / "reads.log"
    root = Path(__file__).resolve().parents[1]
    code = (
        "import gpa_lib\nfrom gpa_lib.read_log import WATCHED\n"
        "next(WATCHED.glob('*.json')).read_text()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(root), GPA_BOOK_READ_LOG=str(log))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert len(read_log(log)) == 1 and "data/results" in read_log(log)[0]
    env.pop("GPA_BOOK_READ_LOG")
    log.unlink()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not log.exists()

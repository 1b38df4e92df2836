"""Which committed result files a process opened: the book runner's record of what a chapter read.

The runner (:mod:`gpa_lib.book.execute`) names a log file in ``$GPA_BOOK_READ_LOG`` for each chapter
it executes; importing :mod:`gpa_lib` then installs an audit hook (:func:`sys.addaudithook`) that
appends the path of every file opened for reading under ``data/results/`` to that log, once each.
So the chapter's inputs are observed, whichever library function or glob opened them, and a test
can check them against the inputs ``_config.yml`` declares for the execution cache. Standard library
only; without the variable nothing is installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "GPA_BOOK_READ_LOG"
#: The folder whose reads are logged: the committed results.
WATCHED = Path(__file__).resolve().parent.parent / "data" / "results"

_installed: dict[str, object] = {}


def install_from_env() -> bool:
    """Install the hook when ``$GPA_BOOK_READ_LOG`` names a log file; True when installed."""
    log = os.environ.get(ENV)
    if not log or "log" in _installed:
        return bool(log)
    install(Path(log))
    return True


def install(log: Path, watched: Path = WATCHED) -> None:
    """Append to ``log`` the path of each file under ``watched`` that this process opens for
    reading (once per path). An audit hook cannot be removed: call it once per process."""
    prefix = os.path.join(os.path.abspath(watched), "")
    seen: set[str] = set()
    busy = [False]

    def hook(event: str, args: tuple) -> None:
        if event != "open" or busy[0] or not args:
            return
        path, mode = args[0], args[1] if len(args) > 1 else None
        if not isinstance(path, str | bytes | os.PathLike):
            return
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return
        name = os.path.abspath(os.fsdecode(path))
        if not name.startswith(prefix) or name in seen:
            return
        seen.add(name)
        busy[0] = True
        try:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(name + "\n")
        finally:
            busy[0] = False

    _installed["log"] = log
    sys.addaudithook(hook)


def read_log(log: str | os.PathLike) -> list[str]:
    """The distinct paths in a log, sorted; empty when the log does not exist."""
    path = Path(log)
    if not path.exists():
        return []
    return sorted({line for line in path.read_text(encoding="utf-8").splitlines() if line})

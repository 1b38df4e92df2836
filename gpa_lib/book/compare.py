"""``python -m gpa_lib.book.compare DIR_A DIR_B``: do two executions glue the same numbers?

Reads every executed ``.ipynb`` present in both folders (e.g. ``_build/executed/full`` copied aside
after one run, and the folder of a second run), compares their glued values key by key, and prints
one row per notebook. Values that measure the machine rather than the model (times, speed-ups,
rates, dates, the machine's name) differ between runs by nature; keys matching ``--ignore`` (a
regular expression, default :data:`TIMING_KEYS`) are left out and counted. Exit status 1 when any
other value differs, with the keys and both values listed.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gpa_lib.book.glue import glued_values

#: Glue keys that hold timings or machine facts: wall times, ms/s, speed-ups, rates, ratios of
#: times, first-call costs, dates and where a run happened.
TIMING_KEYS = (
    r"(wall|_s$|_ms|seconds|time|speedup|speed_up|first_call|gflops|tflops|per_s|where|date|cpu"
    r"|machine|official_(min|max)_speedup|floor_ratio|train_min|^ms$)"
)


@dataclass
class Comparison:
    notebook: str
    compared: int = 0
    ignored: int = 0
    differing: dict[str, tuple[str, str]] = field(default_factory=dict)
    only_in_one: list[str] = field(default_factory=list)


def compare_folders(a: Path, b: Path, ignore: str = TIMING_KEYS) -> list[Comparison]:
    """One :class:`Comparison` per notebook executed in both folders."""
    pattern = re.compile(ignore)
    names = sorted({p.name for p in a.glob("*.ipynb")} & {p.name for p in b.glob("*.ipynb")})
    if not names:
        raise ValueError(f"no executed notebook is in both {a} and {b}")
    results = []
    for name in names:
        va, vb = glued_values(a / name), glued_values(b / name)
        row = Comparison(Path(name).stem)
        row.only_in_one = sorted(set(va) ^ set(vb))
        for key in sorted(set(va) & set(vb)):
            if pattern.search(key):
                row.ignored += 1
                continue
            row.compared += 1
            if va[key] != vb[key]:
                row.differing[key] = (va[key], vb[key])
        results.append(row)
    return results


def format_report(rows: list[Comparison]) -> str:
    width = max(len(r.notebook) for r in rows + [Comparison("notebook")])
    lines = [f"{'notebook':<{width}}  compared  identical  ignored (timings)", "-" * (width + 40)]
    for r in rows:
        lines.append(
            f"{r.notebook:<{width}}  {r.compared:8d}  {r.compared - len(r.differing):9d}  {r.ignored:7d}"
        )
    for r in rows:
        for key, (x, y) in r.differing.items():
            lines.append(f"{r.notebook}: {key} differs: {x!r} vs {y!r}")
        for key in r.only_in_one:
            lines.append(f"{r.notebook}: {key} is glued in only one run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpa_lib.book.compare", description=__doc__)
    parser.add_argument("first", type=Path, help="folder of executed notebooks of one run")
    parser.add_argument("second", type=Path, help="folder of executed notebooks of another run")
    parser.add_argument("--ignore", default=TIMING_KEYS, help="regex of glue keys to leave out")
    args = parser.parse_args(argv)
    rows = compare_folders(args.first, args.second, args.ignore)
    print(format_report(rows))
    return 1 if any(r.differing or r.only_in_one for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

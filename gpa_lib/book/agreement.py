"""Does a result file a run wrote agree with the committed one in ``data/results/``?

A reader's ``make book`` writes its results under ``_build/executed/<profile>/results/`` and never
touches the committed files; the run's summary then says, per result file, whether the numbers agree
with the committed ones. Numbers agree when they are within a relative tolerance of :data:`RTOL` (or
an absolute one of :data:`ATOL` near zero): enough for the float noise of another BLAS or thread
count, far too little for a changed model. The ``provenance`` block and every key that holds a timing
or a machine fact (the regular expression :data:`gpa_lib.book.compare.TIMING_KEYS`, the same rule
that compares glued values) are left out; strings, booleans and the shape of the document must be
equal.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpa_lib.book.compare import TIMING_KEYS

#: Relative and absolute tolerance for two numbers of a result file to agree.
RTOL = 1e-6
ATOL = 1e-9
#: Top-level keys that describe the run, not its result.
IGNORED_TOP = frozenset({"provenance"})


@dataclass
class Agreement:
    """The comparison of one result file with its committed counterpart."""

    name: str  # file name, e.g. "ch1_gpa_complexity.json"
    status: (
        str  # "match" | "differs" | "new" (nothing committed) | "not compared" (another profile)
    )
    compared: int = 0  # numbers, strings and booleans compared
    ignored: int = 0  # values under timing keys, left out
    differences: list[str] = field(default_factory=list)  # "path: a vs b", the first few

    @property
    def line(self) -> str:
        """One line for the run's summary table."""
        if self.status == "match":
            return f"match ({self.compared} values within rtol {RTOL:g}; {self.ignored} timings ignored)"
        if self.status == "differs":
            more = len(self.differences) - 1
            return f"DIFFERS: {self.differences[0]}" + (f" (and {more} more)" if more else "")
        return self.status + (f": {self.differences[0]}" if self.differences else "")


def compare_result_files(
    built: Path, committed: Path, *, rtol: float = RTOL, atol: float = ATOL
) -> Agreement:
    """Compare the result ``built`` (this run) with ``committed`` (``data/results/<same name>``)."""
    name = built.name
    if not committed.is_file():
        return Agreement(name, "new", differences=[f"no committed {committed.name}"])
    new, old = json.loads(built.read_text()), json.loads(committed.read_text())
    new_profile = (new.get("provenance") or {}).get("profile")
    old_profile = (old.get("provenance") or {}).get("profile")
    if new_profile != old_profile:
        return Agreement(
            name,
            "not compared",
            differences=[f"profile {new_profile}, the committed file is profile {old_profile}"],
        )
    result = Agreement(name, "match")
    walk(
        {k: v for k, v in new.items() if k not in IGNORED_TOP},
        {k: v for k, v in old.items() if k not in IGNORED_TOP},
        "",
        result,
        re.compile(TIMING_KEYS),
        rtol,
        atol,
    )
    if result.differences:
        result.status = "differs"
    return result


def walk(
    new: Any, old: Any, path: str, into: Agreement, timing: re.Pattern, rtol: float, atol: float
) -> None:
    """Compare two JSON values recursively, recording differences in ``into``."""
    if isinstance(new, dict) and isinstance(old, dict):
        for key in sorted(set(new) | set(old)):
            where = f"{path}.{key}" if path else str(key)
            if timing.search(str(key)):
                into.ignored += 1
            elif key not in new or key not in old:
                into.differences.append(
                    f"{where}: only in {'this run' if key in new else 'data/results'}"
                )
            else:
                walk(new[key], old[key], where, into, timing, rtol, atol)
        return
    if isinstance(new, list) and isinstance(old, list):
        if len(new) != len(old):
            into.differences.append(f"{path}: {len(new)} items vs {len(old)}")
            return
        for index, (a, b) in enumerate(zip(new, old, strict=True)):
            walk(a, b, f"{path}[{index}]", into, timing, rtol, atol)
        return
    into.compared += 1
    if _is_number(new) and _is_number(old):
        same = (math.isnan(new) and math.isnan(old)) or math.isclose(
            new, old, rel_tol=rtol, abs_tol=atol
        )
    else:
        same = new == old
    if not same:
        into.differences.append(f"{path}: {new!r} vs {old!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

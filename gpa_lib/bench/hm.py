"""python -m gpa_lib.bench hm: ``load_hm`` at the real size, its wall time and peak memory.

Without ``--root`` a synthetic H&M-format set of the real size (31,788,324 transactions, 1,371,980
customers, 105,542 articles; :mod:`gpa_lib.recsys.data.hm_synthetic`) is written once into
``--cache`` (default ``data/cache/hm_synthetic``, git-ignored) and reused; ``--rows`` makes a smaller
one (customers and articles scaled down with it). ``--root`` reads the real files instead.

``load_hm`` runs in a child process, so its peak resident memory is not mixed with the parent's:
``load_peak_rss_bytes`` is the kernel's high-water mark of the child (``ru_maxrss``) right after
``load_hm`` returns, ``child_peak_rss_bytes`` the same from ``os.wait4`` at its exit (with the counts
it reports). The child also reports its memory after the imports and the deep size of the typed
result. The result is checked
against :func:`~gpa_lib.recsys.data.hm_synthetic.count_transactions`, an independent streaming
count of the file (rows, distinct customers and articles, first and last day); a mismatch is an
error. Writes ``data/results/hm_load_bench.json`` with provenance. A benchmark script, not a timed
test: timings on a shared machine vary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gpa_lib.recsys.data.hm_synthetic import (
    HM_ARTICLES,
    HM_CUSTOMERS,
    HM_TRANSACTIONS,
    count_transactions,
    synthetic_manifest,
    write_synthetic_hm,
)
from gpa_lib.results import REPO_ROOT, write_result

DEFAULT_CACHE = REPO_ROOT / "data" / "cache" / "hm_synthetic"

#: Run in the child: load, then describe the result on stdout as one JSON line.
_CHILD = """
import json, resource, sys, time
import numpy as np
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
from gpa_lib.recsys.data import load_hm
before = rss()
tic = time.perf_counter()
data = load_hm(sys.argv[1], progress=False)
wall = time.perf_counter() - tic
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before the counts below
tx = data.transactions
tables = {n: int(getattr(data, n).memory_usage(deep=True).sum()) for n in
          ("transactions", "articles", "customers")}
# distinct ids through positions in the (small) tables, so the counting adds little memory
sold = np.zeros(len(data.articles), dtype=bool)
for start in range(0, len(tx), 1 << 22):
    sold[data.articles.index.get_indexer(tx["article"].to_numpy()[start : start + (1 << 22)])] = True
open(sys.argv[2], "w").write(json.dumps({
    "wall_time_s": wall,
    "rss_after_imports_bytes": before,
    "rss_after_load_bytes": rss(),
    "load_peak_rss_bytes": peak,
    "table_bytes": tables,
    "rows": len(tx),
    "customers_table": len(data.customers),
    "articles_table": len(data.articles),
    "customers": int(np.count_nonzero(np.bincount(tx["customer"].to_numpy(), minlength=1))),
    "articles": int(sold.sum()),
    "first_day": str(tx["t_dat"].iloc[0].date()) if len(tx) else None,
    "last_day": str(tx["t_dat"].iloc[-1].date()) if len(tx) else None,
}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", default=None, help="folder with the real H&M files (default: a synthetic set)"
    )
    parser.add_argument(
        "--cache",
        default=str(DEFAULT_CACHE),
        help="folder for the synthetic set (written once, reused while its size matches)",
    )
    parser.add_argument(
        "--rows", type=int, default=HM_TRANSACTIONS, help="transactions of the synthetic set"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic set")
    parser.add_argument(
        "--name", default="hm_load_bench", help="result file stem in the results folder"
    )
    parser.add_argument(
        "--results-dir",
        default=None,
        help="folder for the JSON (default $GPA_LIB_RESULTS_DIR or data/results)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")


def synthetic_sizes(rows: int) -> dict[str, int]:
    """Customers and articles for ``rows`` transactions, in the real file's proportions."""
    scale = rows / HM_TRANSACTIONS
    return {
        "n_transactions": rows,
        "n_customers": max(1, round(HM_CUSTOMERS * scale))
        if rows < HM_TRANSACTIONS
        else HM_CUSTOMERS,
        "n_articles": max(1, round(HM_ARTICLES * scale)) if rows < HM_TRANSACTIONS else HM_ARTICLES,
    }


def ensure_synthetic(cache: Path, rows: int, seed: int) -> tuple[dict[str, Any], float | None]:
    """The synthetic set in ``cache``, written if absent or of another size; (manifest, write seconds)."""
    sizes = synthetic_sizes(rows)
    manifest = synthetic_manifest(cache)
    if manifest is not None and all(
        manifest.get(k) == v for k, v in {**sizes, "seed": seed}.items()
    ):
        return manifest, None
    tic = time.perf_counter()
    write_synthetic_hm(cache, seed=seed, **sizes)
    return synthetic_manifest(cache), time.perf_counter() - tic


def run_child(root: Path) -> dict[str, Any]:
    """``load_hm(root)`` in a fresh interpreter: its report plus the kernel's view of its peak."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="hm_bench_") as tmp:
        report_file, log_file = Path(tmp) / "report.json", Path(tmp) / "stderr.txt"
        tic = time.perf_counter()
        with open(log_file, "wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(root), str(report_file)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )
            # wait4 rather than Popen.wait: it gives this child's own rusage (peak RSS, CPU time)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - tic
        if child.returncode != 0:
            raise RuntimeError(
                f"load_hm({str(root)!r}) failed in the child process "
                f"(exit {child.returncode}):\n{log_file.read_text()[-4000:]}"
            )
        report = json.loads(report_file.read_text())
    report["child_wall_time_s"] = wall
    report["child_peak_rss_bytes"] = usage.ru_maxrss * 1024  # Linux reports KiB; with the counts
    report["child_cpu_s"] = usage.ru_utime + usage.ru_stime
    return report


def compare(loaded: dict[str, Any], counted: dict[str, Any]) -> list[str]:
    """Disagreements between the loader's result and the independent count of the file."""
    return [
        f"{key}: load_hm gives {loaded[key]!r}, the file has {counted[key]!r}"
        for key in ("rows", "customers", "articles", "first_day", "last_day")
        if loaded[key] != counted[key]
    ]


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(args: argparse.Namespace) -> int:
    if args.root is not None:
        root, source, written_s = Path(args.root), "real", None
        manifest = None
    else:
        root, source = Path(args.cache), "synthetic"
        manifest, written_s = ensure_synthetic(root, args.rows, args.seed)
    file = root / "transactions_train.csv"
    load_before = _load_average()
    report = run_child(root)
    load_after = _load_average()
    tic = time.perf_counter()
    counted = count_transactions(file)
    count_s = time.perf_counter() - tic
    problems = compare(report, counted)
    typed = sum(report["table_bytes"].values())
    payload = {
        "source": source,
        "root": str(root),
        "synthetic": manifest,
        "synthetic_write_s": written_s,
        "transactions_bytes": file.stat().st_size,
        "load": report,
        "result_bytes": typed,
        "peak_over_result": report["load_peak_rss_bytes"] / typed if typed else None,
        # the interpreter with numpy, pandas, pyarrow and torch is ~0.3 GB before reading anything
        "peak_above_imports_over_result": (
            (report["load_peak_rss_bytes"] - report["rss_after_imports_bytes"]) / typed
            if typed
            else None
        ),
        "independent_count": counted,
        "independent_count_s": count_s,
        "agrees": not problems,
        "load_average_before_after": [load_before, load_after],
    }
    gib = 1 << 30
    print(
        f"load_hm on {report['rows']:,} rows ({source}): {report['wall_time_s']:.1f} s, "
        f"peak RSS {report['load_peak_rss_bytes'] / gib:.2f} GiB for a {typed / gib:.2f} GiB result "
        f"(x{payload['peak_over_result']:.2f}); interpreter {report['rss_after_imports_bytes'] / gib:.2f} GiB; "
        f"load average {load_before} -> {load_after}"
    )
    if not args.no_write:
        path = write_result(
            args.name,
            payload,
            profile=source,
            wall_time_s=report["wall_time_s"],
            results_dir=args.results_dir,
        )
        print(f"wrote {path}")
    if problems:
        print("the loader disagrees with the file:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0

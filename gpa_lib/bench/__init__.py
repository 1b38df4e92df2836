"""Benchmark scripts: ``python -m gpa_lib.bench <name>``; each writes JSON with provenance to data/results/.

Benchmarks are scripts, not timed tests (timings flake on shared machines). Each subcommand lives in
its own module with ``add_arguments(parser)`` and ``main(args) -> int`` and is listed in
:data:`gpa_lib.bench.__main__.COMMANDS`.
"""

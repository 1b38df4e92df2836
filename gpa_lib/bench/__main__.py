"""python -m gpa_lib.bench <command> [options]; ``--help`` after a command lists its options."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand -> (module with add_arguments(parser) and main(args), one-line help). A new benchmark
#: (such as the CUDA ``kernel`` one) is one more entry here and one more module.
COMMANDS: dict[str, tuple[str, str]] = {
    "attention": (
        "gpa_lib.bench.attention",
        "dense SDPA against every GPA backend on this machine",
    ),
    "kernel": (
        "gpa_lib.bench.kernel",
        "the fused CUDA kernel against reference, FlexAttention and dense SDPA (needs a GPU)",
    ),
    "official": (
        "gpa_lib.bench.official",
        "our GPA against the authors' GPA_module (needs a clone of zalandoresearch/gpa)",
    ),
    "pose": (
        "gpa_lib.bench.pose",
        "chapter 3's studies: seeds, test-time topk trade-off, resolution scaling (GPA vs dense)",
    ),
    "recsys": (
        "gpa_lib.bench.recsys",
        "chapters 4 and 5's studies: the backtest protocol, the LSTM ablation, the drift control, "
        "the Fashion DNA input variants, and every recommender's fit and scoring time",
    ),
    "hierarchy": (
        "gpa_lib.bench.hierarchy",
        "the hierarchical phase 1 against exact phase 1: blocks and mass found, time per grid side",
    ),
    "hm": (
        "gpa_lib.bench.hm",
        "load_hm on an H&M-format set of the real size (synthetic, or --root): time and peak memory",
    ),
    "machine": (
        "gpa_lib.bench.machine",
        "the GPU's facts and its bf16/fp32 matrix and copy ceilings (needs a GPU)",
    ),
    "extension": (
        "gpa_lib.bench.extension",
        "build the fused CUDA kernel with the compiler's output and time it (needs a GPU)",
    ),
    "pose-gpu": (
        "gpa_lib.bench.pose_run",
        "short gpu-scale pose training runs (GPA and dense): step time and peak memory (needs a GPU)",
    ),
    "sanitize": (
        "gpa_lib.bench.sanitize",
        "the fused kernels under compute-sanitizer: memcheck, racecheck, initcheck (needs a GPU)",
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's module is imported (the others are listed).

    A command imports nothing of the others: ``kernel`` on a GPU machine without a recommender's
    dependencies still runs.
    """
    parser = argparse.ArgumentParser(prog="python -m gpa_lib.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            importlib.import_module(module_name).add_arguments(sub)
        sub.set_defaults(module_name=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in COMMANDS else None).parse_args(argv)
    return int(importlib.import_module(args.module_name).main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m gpa_lib.bench <command> [options]; ``--help`` after a command lists its options."""

from __future__ import annotations

import argparse
import importlib

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
        "training and scoring time of every recommender against implicit ALS and LightFM",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpa_lib.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(sub)
        sub.set_defaults(module_name=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args.module_name).main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

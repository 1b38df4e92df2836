"""python -m gpa_lib.bench recsys: the recommendation backtest of chapters 4 and 5, or model timings.

``--study backtest`` (the default) runs the protocol of :mod:`gpa_lib.recsys.eval.protocol` on a
named store of :data:`gpa_lib.recsys.sim.STORE_PRESETS`: every model (ours, the anchors and popularity)
tuned with the same grid on a validation cutoff, refitted with several seeds at rolling test
cutoffs, next to the simulator's oracle, with block-bootstrap intervals; it writes
``data/results/backtest.json``, which the chapters render.

``--study ablation`` runs the same protocol (same store, cutoffs, seeds, grid budget and bootstrap)
on the controls of the LSTM (:mod:`gpa_lib.recsys.models.ablation`): the paper's LSTM without our
article-context term, a non-personal model with the same article features, and static CF with a
cold start from Fashion DNA, next to ours, static CF, Fashion DNA and popularity; it writes
``data/results/ablation.json``.

``--study sasrec-softmax`` runs the same protocol on SASRec with its two objectives, the softmax
over the articles on sale in the purchase's week (ours, the default) and over the whole catalogue
(the original's, :class:`~gpa_lib.recsys.models.sasrec.CatalogueSASRec`), next to static CF and
popularity; it writes ``data/results/sasrec_softmax.json``.

``--study drift`` re-simulates a smaller store at each ``--drifts`` and fits static CF, Fashion DNA
and the LSTM (the settings tuned in ``backtest.json`` when it exists) with every seed at every
rolling cutoff; block-bootstrap intervals on the gaps; writes ``data/results/drift.json``.

``--study dna-variants`` tests the Fashion DNA paper's comparison of inputs: on the ``images`` store
(its images show a part of each article latent that no attribute names) and on its control (the
same store with ``image_share=0``), Fashion DNA is fitted from tags only, the image only, and both,
with every seed at rolling cutoffs, and evaluated on all, new and known articles with
block-bootstrap intervals (:mod:`gpa_lib.recsys.eval.dna_variants`); writes
``data/results/dna_variants.json``, which chapter 4 renders. Into ``data/results`` it writes only
from a clean commit (``--allow-dirty`` overrides), since the chapter cites that commit.

``--study misspecified`` asks whether Fashion DNA's cold-start lead over LightFM survives a store
that is not the models' form: at every ``--attribute-shares`` and ``--misspecified-values``
(``SimConfig.misspecified``, 0 = the models' form) it simulates one store per ``--store-seeds``, fits
both models (the settings tuned in ``backtest.json`` when it exists) at rolling cutoffs, and puts
hierarchical intervals (stores, cutoffs, customers) on DNA minus LightFM on new articles and on DNA's
cold/warm ratio (:mod:`gpa_lib.recsys.eval.misspecified`); writes ``data/results/misspecified.json``,
which chapter 4 renders, only from a clean commit (``--allow-dirty`` overrides).

``--stores N``, ``--shard i/n`` or ``--jobs N`` run ``backtest``, ``ablation`` or
``sasrec-softmax`` as shards over ``N`` stores (store seeds ``--seed`` to ``--seed + N - 1``, each
a :class:`~gpa_lib.recsys.sim.config.SimConfig` of the preset with that seed):
:mod:`gpa_lib.recsys.eval.shards`. Each (store, cutoff, training seed) is one file under
``--study-dir`` (default ``_build/studies/<name>``); a rerun skips the files that exist, so a killed
study resumes; ``--shard i/n`` runs every n-th shard (one machine or job each), ``--jobs N`` runs
shards in N processes. When every shard is there the study is merged with hierarchical intervals
(stores, cutoffs, customers) and the claims it measures are judged; it writes
``data/results/<study>_stores.json`` (``--name`` to change).

``--data PATH`` runs the same protocol on a user's folder instead of a simulated store: the
interactions format (``data/interactions.md``), H&M's layout (``data/hm.md``) or a Parquet save,
auto-detected (``--layout`` to choose). Defaults sized to the data are printed first
(:mod:`gpa_lib.recsys.eval.own_data`); ``--cutoffs``, ``--test-weeks``, ``--step-weeks``,
``--candidates``, ``--recent-weeks``, ``--exclude-seen``/``--no-exclude-seen``, ``--models``,
``--seeds``, ``--threads`` and ``--params model.key=value`` override them. A progress bar runs
while models fit; a summary table ends the run; the JSON (with provenance) goes to ``--out``.

``--study timing`` simulates the store, fits every model (ours and the anchors, implicit's ALS and LightFM) on the same
data before one cutoff, and times each fit (wall clock and process CPU time) and the scoring of every
article on sale after the cutoff for every customer. Writes ``data/results/<name>.json`` with
provenance. A benchmark script, not a timed test: timings on a shared machine vary.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from gpa_lib.recsys.data.layouts import LAYOUTS
from gpa_lib.recsys.data.stats import store_summary
from gpa_lib.recsys.eval.backtest import CANDIDATE_RULES, rolling_cutoffs, test_window
from gpa_lib.recsys.eval.dna_variants import IMAGE_BATCH, IMAGE_DIM, variants_study, variants_table
from gpa_lib.recsys.eval.experiments import drift_sweep, scoring_time
from gpa_lib.recsys.eval.misspecified import (
    MisspecifiedConfig,
    misspecified_study,
    tuned_params,
)
from gpa_lib.recsys.eval.own_data import backtest_own_data, parse_params, summary_table
from gpa_lib.recsys.eval.protocol import ProtocolConfig, run_protocol
from gpa_lib.recsys.eval.shards import StudySpec, merge, missing_shards, run_study
from gpa_lib.recsys.models.presets import MODEL_CLASSES, MODEL_PARAMS, PROFILES, model_factories
from gpa_lib.recsys.sim import STORE_PRESETS, simulate_config, simulate_preset
from gpa_lib.results import (
    RESULTS_DIR,
    default_results_dir,
    git_commit,
    read_result,
    write_result,
    write_result_file,
)

#: Models that only the ablation study runs by default (its controls).
ABLATION_ONLY = ("lstm_paper", "context_popularity", "static_cf_dna")
#: The control of SASRec's softmax, run by ``--study sasrec-softmax``.
SOFTMAX_ONLY = ("sasrec_catalogue",)


def store_preset(value: str) -> str:
    """``--store``: a simulator preset; a folder gets pointed to ``--data``."""
    if value in STORE_PRESETS:
        return value
    if Path(value).is_dir():
        raise argparse.ArgumentTypeError(
            f"{value!r} is a folder, not a simulator preset ({', '.join(sorted(STORE_PRESETS))}); "
            f"to backtest your own data use --data {value}"
        )
    raise argparse.ArgumentTypeError(
        f"invalid choice: {value!r} (choose from {', '.join(sorted(STORE_PRESETS))}; or --data FOLDER)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--study",
        default="backtest",
        choices=(
            "backtest",
            "ablation",
            "sasrec-softmax",
            "drift",
            "timing",
            "dna-variants",
            "misspecified",
        ),
        help="what to run",
    )
    parser.add_argument(
        "--drifts", default="0,0.35,0.7,1.0", help="comma-separated drifts (drift study)"
    )
    parser.add_argument(
        "--attribute-shares",
        default=None,
        help="comma-separated attribute_share values (misspecified study; default 0.3,0.5,0.7,0.9)",
    )
    parser.add_argument(
        "--misspecified-values",
        default=None,
        help="comma-separated SimConfig.misspecified values (misspecified study; default 0,1,3)",
    )
    parser.add_argument(
        "--store-seeds",
        default=None,
        help="comma-separated store seeds (misspecified study; default 0,1,2,3,4)",
    )
    parser.add_argument(
        "--store",
        default=None,
        type=store_preset,
        metavar="{" + ",".join(sorted(STORE_PRESETS)) + "}",
        help="simulated store preset (default: images for dna-variants, else full); for your "
        "own data use --data",
    )
    parser.add_argument(
        "--customers", type=int, default=None, help="override the preset's customers"
    )
    parser.add_argument("--weeks", type=int, default=None, help="override the preset's weeks")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument(
        "--cutoffs",
        type=int,
        default=None,
        help="rolling test cutoffs (default: 2 for dna-variants, else 6)",
    )
    parser.add_argument(
        "--step-weeks", type=int, default=None, help="weeks between test cutoffs (default 4)"
    )
    parser.add_argument(
        "--seeds", default=None, help="training seeds per model (backtest; default 0,1,2)"
    )
    parser.add_argument(
        "--eval-customers",
        type=int,
        default=None,
        help="customers evaluated per cutoff (default 10000)",
    )
    parser.add_argument("--n-boot", type=int, default=500, help="block-bootstrap resamples")
    parser.add_argument("--profile", default="full", choices=PROFILES, help="model settings preset")
    parser.add_argument(
        "--models",
        default=None,
        help=f"comma-separated models (default: every model of the study; all are "
        f"{','.join(MODEL_CLASSES)})",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--test-weeks", type=int, default=None, help="weeks after the cutoff (default 4)"
    )
    parser.add_argument("--block", type=int, default=8192, help="customers per scoring block")
    parser.add_argument(
        "--name",
        default=None,
        help="result file stem in data/results (default: backtest, or recsys_bench for timing)",
    )
    parser.add_argument(
        "--results-dir",
        default=None,
        help="folder for the JSON (default $GPA_LIB_RESULTS_DIR or data/results)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    parser.add_argument(
        "--image-dim",
        type=int,
        default=IMAGE_DIM,
        help="features of the image CNN in the image variants (dna-variants)",
    )
    parser.add_argument(
        "--image-batch",
        type=int,
        default=IMAGE_BATCH,
        help="articles the image CNN re-encodes per training batch (dna-variants)",
    )
    own = parser.add_argument_group(
        "your own data (--data; see data/interactions.md)",
        "defaults follow the data and are printed at the start; the options above "
        "(--cutoffs, --test-weeks, --step-weeks, --seeds, --eval-customers, --models, --threads, "
        "--n-boot) override them",
    )
    own.add_argument(
        "--data", default=None, help="folder with your data instead of a simulated --store"
    )
    own.add_argument(
        "--layout", default="auto", choices=LAYOUTS, help="the folder's layout (default: detect)"
    )
    own.add_argument(
        "--out", default=None, help="JSON file to write (default: <folder name>-backtest.json)"
    )
    own.add_argument(
        "--candidates",
        default=None,
        choices=CANDIDATE_RULES,
        help="which articles are ranked at a cutoff (default recent_sales)",
    )
    own.add_argument(
        "--recent-weeks",
        type=int,
        default=None,
        help="recent_sales: weeks of sales before the cutoff that make an article a candidate",
    )
    own.add_argument(
        "--exclude-seen",
        default=None,
        action=argparse.BooleanOptionalAction,
        help="leave what a customer bought before out of their ranking (default: when the data "
        "has almost no repeat purchases)",
    )
    own.add_argument(
        "--min-history-weeks",
        type=int,
        default=None,
        help="weeks of sales the validation cutoff must leave before it (default 4)",
    )
    own.add_argument(
        "--params",
        action="append",
        default=None,
        metavar="MODEL.KEY=VALUE",
        help="a model setting, e.g. lstm.steps=2000 (repeatable; not tuned over)",
    )
    sharded = parser.add_argument_group(
        "a study as shards over stores (backtest, ablation, sasrec-softmax)",
        "any of these runs the study through gpa_lib.recsys.eval.shards",
    )
    sharded.add_argument(
        "--stores", type=int, default=None, help="stores (simulation seeds --seed, --seed+1, ...)"
    )
    sharded.add_argument(
        "--shard", default=None, metavar="I/N", help="run shards I, I+N, I+2N, ... (0 <= I < N)"
    )
    sharded.add_argument("--jobs", type=int, default=None, help="shards run in parallel processes")
    sharded.add_argument(
        "--drift",
        type=float,
        default=None,
        help="the stores' drift of tastes (default: the preset's); with --stores, the multi-store "
        "drift control is --study backtest --drift D per drift",
    )
    sharded.add_argument(
        "--study-dir", default=None, help="folder of the shard files (default _build/studies/NAME)"
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="let dna-variants write into data/results from uncommitted code",
    )


#: Defaults that depend on the study (the parser's default is None for these).
STUDY_DEFAULTS: dict[str, dict[str, Any]] = {
    "dna-variants": {"store": "images", "cutoffs": 2},
    "misspecified": {
        "cutoffs": MisspecifiedConfig.n_cutoffs,
        "eval_customers": MisspecifiedConfig.max_customers,
        "seeds": "0",
    },
}
FALLBACK_DEFAULTS = {
    "store": "full",
    "cutoffs": 6,
    "test_weeks": 4,
    "step_weeks": 4,
    "seeds": "0,1,2",
    "eval_customers": 10_000,
}
#: Options that only --data reads.
OWN_DATA_OPTIONS = (
    "out",
    "candidates",
    "recent_weeks",
    "exclude_seen",
    "min_history_weeks",
    "params",
)


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the study-dependent arguments the command line left out (see :data:`STUDY_DEFAULTS`);
    with ``--data`` they stay unset, for :mod:`gpa_lib.recsys.eval.own_data` to size to the data."""
    if getattr(args, "data", None) is not None:
        if args.store is not None or args.study != "backtest":
            raise SystemExit(
                f"--data runs the backtest on your folder; it does not combine with "
                f"--store={args.store!r} or --study={args.study!r}"
            )
        return args
    given = [
        f"--{n.replace('_', '-')}" for n in OWN_DATA_OPTIONS if getattr(args, n, None) is not None
    ]
    if given:
        raise SystemExit(f"{', '.join(given)} need(s) --data PATH (your own data)")
    for name, value in {**FALLBACK_DEFAULTS, **STUDY_DEFAULTS.get(args.study, {})}.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return args


def run_own_data(args: argparse.Namespace) -> dict[str, Any]:
    """``--data``: the protocol on the user's folder (:func:`~gpa_lib.recsys.eval.own_data.backtest_own_data`)."""
    protocol = {
        "n_cutoffs": args.cutoffs,
        "test_weeks": args.test_weeks,
        "step_weeks": args.step_weeks,
        "candidate_rule": args.candidates,
        "recent_weeks": args.recent_weeks,
        "exclude_seen": args.exclude_seen,
        "min_history_weeks": args.min_history_weeks,
        "n_boot": args.n_boot,
    }
    if args.seeds is not None:
        protocol["seeds"] = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    if args.eval_customers is not None:
        protocol["max_customers"] = args.eval_customers
    models = None if args.models is None else study_models(args)
    payload = backtest_own_data(
        args.data,
        models,
        layout=args.layout,
        params=parse_params(args.params),
        threads=args.threads,
        progress=True,
        **{k: v for k, v in protocol.items() if v is not None},
    )
    print(summary_table(payload).to_string(), flush=True)
    return payload


def simulate_store(args: argparse.Namespace):
    overrides = {"seed": args.seed}
    if args.customers is not None:
        overrides["n_customers"] = args.customers
    if args.weeks is not None:
        overrides["n_weeks"] = args.weeks
    tic = time.perf_counter()
    data = simulate_preset(args.store, progress=False, **overrides)
    return data, time.perf_counter() - tic


def store_record(args: argparse.Namespace, data) -> dict[str, Any]:
    config = data.truth.config
    return {
        "preset": args.store,
        "customers": config.n_customers,
        "weeks": config.n_weeks,
        "seed": config.seed,
        "drift": config.drift,
        "items": len(data.transactions),
        "summary": store_summary(data),
    }


#: The models each study runs when ``--models`` is not given.
STUDY_MODELS = {
    "backtest": tuple(n for n in MODEL_CLASSES if n not in ABLATION_ONLY + SOFTMAX_ONLY),
    "sasrec-softmax": ("popularity", "static_cf", "sasrec", "sasrec_catalogue"),
    "ablation": (
        "popularity",
        "context_popularity",
        "static_cf",
        "static_cf_dna",
        "fashion_dna",
        "lstm_paper",
        "lstm",
    ),
    "drift": ("static_cf", "fashion_dna", "lstm"),
    "timing": tuple(n for n in MODEL_CLASSES if n not in SOFTMAX_ONLY),  # the control: its study
}


def study_models(args: argparse.Namespace) -> list[str]:
    if args.models is None:
        return list(STUDY_MODELS[args.study])
    return [n.strip() for n in args.models.split(",") if n.strip()]


def run_drift_study(args: argparse.Namespace) -> dict[str, Any]:
    """The drift control with the backtest's tuned settings (when ``backtest.json`` exists)."""
    torch.set_num_threads(args.threads)
    names = study_models(args)
    overrides, tuned_at = {}, None
    try:
        bench = read_result("backtest", results_dir=args.results_dir)
        if bench.get("protocol", {}).get("model_profile") == args.profile:
            overrides = {n: bench["tuning"][n]["chosen"] for n in names if n in bench["tuning"]}
            tuned_at = bench["provenance"]["commit"]
    except FileNotFoundError:
        pass
    config = ProtocolConfig(
        n_cutoffs=args.cutoffs,
        test_weeks=args.test_weeks,
        step_weeks=args.step_weeks,
        seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
        max_customers=args.eval_customers,
        n_boot=args.n_boot,
    )
    preset = STORE_PRESETS[args.store]
    n_customers = args.customers if args.customers is not None else preset.n_customers
    n_weeks = args.weeks if args.weeks is not None else preset.n_weeks
    drifts = [float(d) for d in args.drifts.split(",") if d.strip()]
    table = drift_sweep(
        drifts,
        n_customers=n_customers,
        n_weeks=n_weeks,
        profile=args.profile,
        config=config,
        sim_seed=args.seed,
        models=tuple(names),
        overrides=overrides,
        progress=True,
    )
    return {
        "store": {
            "preset": args.store,
            "customers": n_customers,
            "weeks": n_weeks,
            "seed": args.seed,
        },
        "protocol": asdict(config),
        "models": names,
        "settings": {n: {**MODEL_PARAMS[args.profile][n], **overrides.get(n, {})} for n in names},
        "tuned_in_backtest_commit": tuned_at,
        "drift_sweep": table.to_dict(orient="records"),
        "threads": args.threads,
    }


def run_backtest_study(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    data, simulate_s = simulate_store(args)
    config = ProtocolConfig(
        n_cutoffs=args.cutoffs,
        test_weeks=args.test_weeks,
        step_weeks=args.step_weeks,
        seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
        max_customers=args.eval_customers,
        n_boot=args.n_boot,
    )
    names = study_models(args)
    payload = run_protocol(data, names, args.profile, config, progress=True)
    payload["store"] = store_record(args, data)
    payload["timing_seconds"]["simulate"] = round(simulate_s, 1)
    payload["threads"] = args.threads
    return payload


def protocol_config(args: argparse.Namespace) -> ProtocolConfig:
    return ProtocolConfig(
        n_cutoffs=args.cutoffs,
        test_weeks=args.test_weeks,
        step_weeks=args.step_weeks,
        seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
        max_customers=args.eval_customers,
        n_boot=args.n_boot,
    )


def run_dna_variants_study(args: argparse.Namespace) -> dict[str, Any]:
    """Tags only, image only and both on the store preset and on its ``image_share=0`` control."""
    torch.set_num_threads(args.threads)
    overrides = {"seed": args.seed}
    if args.customers is not None:
        overrides["n_customers"] = args.customers
    if args.weeks is not None:
        overrides["n_weeks"] = args.weeks
    config = replace(STORE_PRESETS[args.store], **overrides)
    if config.image_share == 0:
        raise ValueError(
            f"store={args.store!r} has image_share=0: its images add nothing to the attributes; "
            "use a store whose images carry part of the latent (the default: images)"
        )
    tic = time.perf_counter()
    stores = {
        "images": simulate_config(config, progress=False),
        "control": simulate_config(replace(config, image_share=0.0), progress=False),
    }
    simulate_s = time.perf_counter() - tic
    protocol = protocol_config(args)
    payload = variants_study(
        stores,
        args.profile,
        protocol,
        image_dim=args.image_dim,
        image_batch=args.image_batch,
        progress=True,
    )
    payload["preset"] = args.store
    payload["protocol"] = {**asdict(protocol), "model_profile": args.profile}
    payload["simulate_seconds"] = round(simulate_s, 1)
    payload["threads"] = args.threads
    print(variants_table(payload).to_string(), flush=True)
    return payload


def run_misspecified_study(args: argparse.Namespace) -> dict[str, Any]:
    """The cold-start comparison across attribute_share with the misspecified terms off and on."""
    torch.set_num_threads(args.threads)

    def numbers(text: str | None, cast, default):
        return default if text is None else tuple(cast(x) for x in text.split(",") if x.strip())

    base = MisspecifiedConfig()
    config = replace(
        base,
        attribute_shares=numbers(args.attribute_shares, float, base.attribute_shares),
        misspecified=numbers(args.misspecified_values, float, base.misspecified),
        store_seeds=numbers(args.store_seeds, int, base.store_seeds),
        preset=args.store,
        n_customers=args.customers if args.customers is not None else base.n_customers,
        n_weeks=args.weeks if args.weeks is not None else base.n_weeks,
        n_cutoffs=args.cutoffs,
        test_weeks=args.test_weeks,
        step_weeks=args.step_weeks,
        training_seeds=numbers(args.seeds, int, base.training_seeds),
        max_customers=args.eval_customers,
        model_profile=args.profile,
        n_boot=args.n_boot,
    )
    try:
        params = tuned_params(read_result("backtest", results_dir=args.results_dir), args.profile)
    except FileNotFoundError:
        params = {}
    payload = misspecified_study(config, params=params, progress=True)
    payload["threads"] = args.threads
    return payload


def check_clean(args: argparse.Namespace) -> None:
    """dna-variants and misspecified write into the committed results only from a clean commit
    (the chapter cites it); elsewhere (``--results-dir``, ``$GPA_LIB_RESULTS_DIR``) or with
    ``--allow-dirty`` they may."""
    if args.study not in ("dna-variants", "misspecified") or args.no_write or args.allow_dirty:
        return
    folder = Path(args.results_dir) if args.results_dir is not None else default_results_dir()
    if folder.resolve() != RESULTS_DIR.resolve():
        return
    commit = git_commit()
    if commit.endswith("-dirty") or commit == "unknown":
        raise SystemExit(
            f"the work tree is at commit={commit!r}: commit the code first (the result records "
            "the commit it was computed by), or pass --allow-dirty / --results-dir"
        )


def is_sharded(args: argparse.Namespace) -> bool:
    names = ("stores", "shard", "jobs", "study_dir", "drift")
    return any(getattr(args, n, None) is not None for n in names)


def parse_shard(value: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``; ``None`` -> ``(0, 1)``."""
    if value is None:
        return 0, 1
    try:
        index, count = (int(x) for x in value.split("/"))
    except ValueError:
        raise SystemExit(f"--shard={value!r} must be I/N with integers, e.g. 0/4") from None
    if not 0 <= index < count:
        raise SystemExit(f"--shard={value!r}: need 0 <= I < N")
    return index, count


def result_name(args: argparse.Namespace) -> str:
    default = {
        "timing": "recsys_bench",
        "dna-variants": "dna_variants",
        "sasrec-softmax": "sasrec_softmax",
    }.get(args.study, args.study)
    return args.name or (f"{default}_stores" if is_sharded(args) else default)


def study_spec(args: argparse.Namespace) -> StudySpec:
    overrides = {}
    if args.customers is not None:
        overrides["n_customers"] = args.customers
    if args.weeks is not None:
        overrides["n_weeks"] = args.weeks
    if args.drift is not None:
        overrides["drift"] = args.drift
    n_stores = 1 if args.stores is None else args.stores
    if n_stores < 1:
        raise SystemExit(f"--stores={n_stores} must be >= 1")
    stores = tuple(
        replace(STORE_PRESETS[args.store], seed=args.seed + i, **overrides) for i in range(n_stores)
    )
    return StudySpec(
        args.study, stores, tuple(study_models(args)), args.profile, protocol_config(args)
    )


def run_sharded_study(args: argparse.Namespace) -> dict[str, Any] | None:
    """The study as shards (:mod:`gpa_lib.recsys.eval.shards`); the merged payload when every
    shard is done, else None (the other shards still have to run)."""
    if args.study not in ("backtest", "ablation", "sasrec-softmax"):
        raise SystemExit(
            f"--stores/--shard/--jobs run backtest, ablation or sasrec-softmax, not {args.study}"
        )
    spec = study_spec(args)
    folder = Path(args.study_dir or Path("_build") / "studies" / result_name(args))
    run_study(
        spec,
        folder,
        shard=parse_shard(args.shard),
        jobs=args.jobs or 1,
        threads=args.threads,
        progress=True,
    )
    missing = missing_shards(spec, folder)
    if missing:
        print(f"{len(missing)} shard(s) still to run in {folder}; the merge waits for them")
        return None
    payload = merge(spec, folder)
    payload["study_dir"] = str(folder)
    payload["threads"] = args.threads
    return payload


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    if getattr(args, "data", None) is not None:
        return run_own_data(args)
    if is_sharded(args):
        return run_sharded_study(args)
    if args.study == "dna-variants":
        return run_dna_variants_study(args)
    if args.study == "misspecified":
        return run_misspecified_study(args)
    if args.study in ("backtest", "ablation", "sasrec-softmax"):
        return run_backtest_study(args)
    if args.study == "drift":
        return run_drift_study(args)
    torch.set_num_threads(args.threads)
    data, simulate_s = simulate_store(args)
    cutoff = rolling_cutoffs(data, 1, args.test_weeks)[0]
    window = test_window(data, cutoff, args.test_weeks)
    past = data.window(end=cutoff)
    customers = data.customers.index.to_numpy()
    names = tuple(study_models(args))
    rows, skipped, fitted = [], {}, {}
    for name, factory in model_factories(names, args.profile, random_state=args.seed).items():
        model = factory(fitted)
        ok, why = model.can_run()
        if not ok:
            skipped[name] = why
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(past, until=cutoff)
        fit_s, fit_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        fitted[name] = model
        score = scoring_time(model, customers, window.candidates, block=args.block)
        rows.append(
            {
                "model": name,
                "fit_seconds": round(fit_s, 3),
                "fit_cpu_seconds": round(fit_cpu_s, 3),
                "score_seconds": score["seconds"],
                "customers": score["customers"],
                "articles": score["articles"],
            }
        )
        print(
            f"{name:>14}: fit {fit_s:7.2f} s (cpu {fit_cpu_s:7.2f} s), score "
            f"{score['customers']:,} x {score['articles']} in {score['seconds']:.2f} s",
            flush=True,
        )
    return {
        "store": {
            **store_record(args, data),
            "items_before_cutoff": len(past.transactions),
            "cutoff": str(cutoff.date()),
        },
        "simulate_seconds": round(simulate_s, 3),
        "profile": args.profile,
        "threads": args.threads,
        "models": rows,
        "skipped": skipped,
        "note": "lstm reuses the fashion_dna fitted just before it; its fit time excludes the DNA",
    }


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Entry point for ``python -m gpa_lib.bench recsys`` (a parsed namespace) or a list of args."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="python -m gpa_lib.bench recsys", description=__doc__)
        add_arguments(parser)
        args = parser.parse_args(args)
    resolve_defaults(args)
    check_clean(args)
    tic = time.perf_counter()
    payload = run(args)
    if args.data is not None and not args.no_write:
        out = Path(args.out or f"{Path(args.data).resolve().name}-backtest.json")
        path = write_result_file(
            out, payload, profile="own-data", wall_time_s=time.perf_counter() - tic
        )
        print(f"wrote {path}")
    elif payload is not None and not args.no_write:
        name = result_name(args)
        path = write_result(
            name,
            payload,
            profile=args.profile,
            wall_time_s=time.perf_counter() - tic,
            results_dir=args.results_dir,
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

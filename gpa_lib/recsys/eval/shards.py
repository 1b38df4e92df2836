"""A protocol study as independent shards over stores, merged into one payload with hierarchical
intervals.

A :class:`StudySpec` names the stores (one :class:`~gpa_lib.recsys.sim.config.SimConfig` each: the
store seed is its ``seed``), the models and the protocol. Its work splits into

- one **tuning unit** per store: :func:`~gpa_lib.recsys.eval.protocol.tune` on the store's
  validation cutoff, written as ``tune-s<seed>.json``;
- one **shard** per (store, test cutoff, training seed): every model refitted with the store's
  chosen settings at that cutoff with that seed, evaluated per customer, written as
  ``s<seed>-c<cutoff>-t<training seed>.npz``.

Every file is written atomically (a temporary name, then ``os.replace``), so a killed study leaves
only whole files; running it again skips what exists (:func:`run_study`). ``shard=(i, n)`` runs the
shards ``i, i + n, i + 2n, ...`` of :func:`shard_ids` (a shard whose store is not tuned yet tunes it
first; two processes tuning the same store write the same file), ``jobs`` runs them in parallel
processes. :func:`merge` reads every shard in a fixed order and resamples stores, cutoffs and
customers (:func:`gpa_lib.stats.hierarchical_bootstrap`); with one store its summary equals that of
:func:`~gpa_lib.recsys.eval.protocol.run_protocol` on the same store (tested).
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gpa_lib.recsys.eval.backtest import SLICES, metric_names, rolling_cutoffs, run_backtest
from gpa_lib.recsys.eval.bootstrap import COMPARISONS
from gpa_lib.recsys.eval.claims import CLAIMS, evidence_from_bootstrap, judge, label_exploratory
from gpa_lib.recsys.eval.oracle import SimulatorOracle
from gpa_lib.recsys.eval.protocol import (
    SEARCH_SPACE,
    ProtocolConfig,
    finite_or_none,
    protocol_params,
    tune,
)
from gpa_lib.recsys.models.presets import check_model_names, model_factories
from gpa_lib.recsys.sim import simulate_config
from gpa_lib.recsys.sim.config import SimConfig
from gpa_lib.stats import hierarchical_bootstrap, sign_flip_p

#: The claims' studies a sharded study of each kind can judge: backtest and ablation run the same
#: protocol, so one store study with the models of both judges the claims of both.
STUDY_CLAIMS: dict[str, tuple[str, ...]] = {
    "backtest": ("backtest", "ablation"),
    "ablation": ("backtest", "ablation"),
}


@dataclass(frozen=True)
class StudySpec:
    """What a sharded study runs."""

    kind: str  # which claims it measures: "backtest", "ablation" or "sasrec-softmax"
    stores: tuple[SimConfig, ...]  # one simulator config per store; its seed is the store seed
    models: tuple[str, ...]  # recommenders (the oracle is added when ``oracle``)
    profile: str = "full"  # model settings preset (gpa_lib.recsys.models.presets)
    protocol: ProtocolConfig = ProtocolConfig()  # cutoffs, training seeds, customers, bootstrap
    oracle: bool = True  # add the simulator's oracle next to the models

    def __post_init__(self) -> None:
        if not self.stores:
            raise ValueError("stores is empty; give at least one SimConfig")
        seeds = [s.seed for s in self.stores]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"store seeds {seeds} repeat; every store needs its own seed")
        check_model_names(self.models)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


def shard_ids(spec: StudySpec) -> list[tuple[int, int, int]]:
    """Every shard as ``(store seed, cutoff index, training seed)``, in the merge order."""
    return [
        (store.seed, c, t)
        for store in spec.stores
        for c in range(spec.protocol.n_cutoffs)
        for t in spec.protocol.seeds
    ]


def shard_path(folder: Path, shard: tuple[int, int, int]) -> Path:
    store, cutoff, seed = shard
    return Path(folder) / f"s{store}-c{cutoff}-t{seed}.npz"


def tuning_path(folder: Path, store_seed: int) -> Path:
    return Path(folder) / f"tune-s{store_seed}.json"


def _atomic(path: Path, write) -> None:
    """``write(tmp_path)`` then rename to ``path``: readers see a whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def prepare(spec: StudySpec, folder: Path) -> None:
    """Create ``folder`` with ``spec.json``, or check that the one there is this study."""
    folder = Path(folder)
    record = folder / "spec.json"
    if record.exists():
        if json.loads(record.read_text()) != spec.to_dict():
            raise ValueError(
                f"{folder} holds shards of another study (its spec.json differs): use another "
                "folder, or delete it to start again"
            )
        return
    _atomic(record, lambda tmp: Path(tmp).write_text(json.dumps(spec.to_dict(), indent=1)))


_STORES: dict[SimConfig, Any] = {}


def store_data(config: SimConfig):
    """The simulated store of ``config``, once per process."""
    if config not in _STORES:
        _STORES.clear()  # one store at a time in memory
        _STORES[config] = simulate_config(config, progress=False)
    return _STORES[config]


def _config_of(spec: StudySpec, store_seed: int) -> SimConfig:
    return next(s for s in spec.stores if s.seed == store_seed)


def tune_store(spec: StudySpec, folder: Path, store_seed: int) -> dict[str, Any]:
    """The tuning of one store (read from its file when there, else computed and written)."""
    path = tuning_path(folder, store_seed)
    if path.exists():
        return json.loads(path.read_text())
    data = store_data(_config_of(spec, store_seed))
    space = SEARCH_SPACE[spec.profile]
    tuning = tune(data, spec.models, spec.profile, spec.protocol, search_space=space)
    record = finite_or_none(tuning)
    _atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(record, default=str)))
    return record


def run_shard(spec: StudySpec, folder: Path, shard: tuple[int, int, int]) -> bool:
    """Fit and evaluate one shard unless its file exists; True when it ran."""
    path = shard_path(folder, shard)
    if path.exists():
        return False
    store_seed, cutoff_index, seed = shard
    tuning = tune_store(spec, folder, store_seed)
    data = store_data(_config_of(spec, store_seed))
    config = spec.protocol
    runnable = [n for n in spec.models if "skipped" not in tuning[n]]
    base = protocol_params(runnable, config, None)
    settings = {n: {**base[n], **tuning[n]["chosen"]} for n in runnable}
    factories = model_factories(runnable, spec.profile, random_state=seed, overrides=settings)
    if spec.oracle and data.truth is not None:
        factories["oracle"] = lambda fitted, truth=data.truth: SimulatorOracle(truth)
    cutoffs = rolling_cutoffs(data, config.n_cutoffs, config.test_weeks, config.step_weeks)
    cutoff = str(cutoffs[cutoff_index].date())
    result = run_backtest(data, factories, replace(config.backtest(), cutoffs=(cutoff,)))
    arrays = {
        f"{m}\t{s}\t{metric}": result.metrics[m][0][s, metric]
        for m in result.models
        for s in SLICES
        for metric in metric_names(config.k)
    }
    meta = {
        "models": result.models,
        "cutoff": cutoff,
        "customers": int(len(result.windows[0].customers)),
        "fit_seconds": {m: v[0] for m, v in result.fit_seconds.items()},
        "skipped": result.skipped,
    }

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)

    _atomic(path, write)
    return True


def _run_one(args: tuple[StudySpec, str, tuple[int, int, int], int]) -> bool:
    spec, folder, shard, threads = args
    import torch

    torch.set_num_threads(threads)
    return run_shard(spec, Path(folder), shard)


def run_study(
    spec: StudySpec,
    folder: Path,
    *,
    shard: tuple[int, int] = (0, 1),
    jobs: int = 1,
    threads: int = 1,
    progress: bool = False,
) -> list[tuple[int, int, int]]:
    """Run the shards ``shard[0], shard[0] + shard[1], ...`` of :func:`shard_ids` that have no file
    yet, in ``jobs`` processes of ``threads`` torch threads; returns the shards that ran."""
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard={index}/{count}: need 0 <= i < n")
    if jobs < 1:
        raise ValueError(f"jobs={jobs} must be >= 1")
    prepare(spec, folder)
    mine = shard_ids(spec)[index::count]
    pending = [s for s in mine if not shard_path(folder, s).exists()]
    stores = sorted({s[0] for s in pending} - {s for s in _tuned(spec, folder)})
    work = [(spec, str(folder), s, threads) for s in pending]
    if jobs == 1:  # store by store: a store is tuned just before its first shard, so a study
        # stopped early leaves whole stores behind
        ran = [item[2] for item in work if _run_one(item)]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_tune_one, [(spec, str(folder), s, threads) for s in stores]))
            ran = [s for s, did in zip(pending, pool.map(_run_one, work), strict=True) if did]
    if progress:
        done = sum(shard_path(folder, s).exists() for s in shard_ids(spec))
        print(f"{len(ran)} shard(s) ran; {done} of {len(shard_ids(spec))} done", flush=True)
    return ran


def _tuned(spec: StudySpec, folder: Path) -> list[int]:
    return [s.seed for s in spec.stores if tuning_path(folder, s.seed).exists()]


def _tune_one(args: tuple[StudySpec, str, int, int]) -> None:
    spec, folder, store, threads = args
    import torch

    torch.set_num_threads(threads)
    tune_store(spec, Path(folder), store)


def missing_shards(spec: StudySpec, folder: Path) -> list[tuple[int, int, int]]:
    return [s for s in shard_ids(spec) if not shard_path(folder, s).exists()]


def merge(spec: StudySpec, folder: Path, *, alpha: float = 0.05) -> dict[str, Any]:
    """The study's payload from every shard: summaries and gaps with hierarchical intervals (JSON
    form of :class:`gpa_lib.stats.Interval`), per-store gaps, the claims this study measures
    judged by :func:`~gpa_lib.recsys.eval.claims.judge` (p from the hierarchical bootstrap; the
    sign-flip p over stores beside it; Holm over the claims of each paper this study measures),
    and every other comparison labelled exploratory."""
    missing = missing_shards(spec, folder)
    if missing:
        raise ValueError(
            f"{len(missing)} shard(s) not done in {folder}, e.g. {missing[:3]}: run them first"
        )
    config = spec.protocol
    metas, stores_values = [], []
    models: list[str] | None = None
    for store in spec.stores:
        per_cutoff = []
        for c in range(config.n_cutoffs):
            blocks = []
            for t in config.seeds:
                with np.load(shard_path(folder, (store.seed, c, t))) as z:
                    meta = json.loads(str(z["meta"]))
                    models = models or meta["models"]
                    blocks.append({k: z[k] for k in z.files if k != "meta"})
                    metas.append(meta)
            per_cutoff.append(blocks)
        stores_values.append(per_cutoff)
    keys = [(m, s, metric) for m in models for s in SLICES for metric in metric_names(config.k)]
    values = {
        key: [
            [np.stack([b["\t".join(key)] for b in blocks]) for blocks in per_cutoff]
            for per_cutoff in stores_values
        ]
        for key in keys
    }
    boot = hierarchical_bootstrap(
        values, n_boot=config.n_boot, level=config.level, seed=config.seed
    )
    summary = {
        m: {
            f"{s}/{metric}": boot.interval((m, s, metric)).to_dict()
            for s in SLICES
            for metric in metric_names(config.k)
        }
        for m in models
    }
    rows = [
        {
            "a": a,
            "b": b,
            "slice": s,
            "metric": metric,
            "gap": boot.gap((a, s, metric), (b, s, metric)).to_dict(),
            "store_gaps": boot.store_gaps((a, s, metric), (b, s, metric)).tolist(),
        }
        for a, b in COMPARISONS
        if a in models and b in models
        for s in SLICES
        for metric in metric_names(config.k)
    ]
    claims_out = []
    for family in CLAIMS.values():
        measured = [
            c
            for c in family
            if c.study in STUDY_CLAIMS.get(spec.kind, (spec.kind,))
            and c.a in models
            and c.b in models
        ]
        if not measured:
            continue
        evidence = {c.name: evidence_from_bootstrap(boot, c) for c in measured}
        for j in judge(measured, evidence, alpha=alpha):
            c = j.claim
            gaps = boot.store_gaps((c.a, c.slice, c.metric), (c.b, c.slice, c.metric))
            claims_out.append(j.to_dict() | {"p_sign_flip": sign_flip_p(gaps)})
    return finite_or_none(
        {
            "spec": spec.to_dict(),
            "models": models,
            "stores": [s.seed for s in spec.stores],
            "tuning": {
                s.seed: json.loads(tuning_path(folder, s.seed).read_text()) for s in spec.stores
            },
            "summary": summary,
            "comparisons": label_exploratory(rows, [c for f in CLAIMS.values() for c in f]),
            "claims": claims_out,
            "shards": len(metas),
            "fit_seconds": {
                m: float(np.mean([meta["fit_seconds"][m] for meta in metas])) for m in models
            },
        }
    )

"""Studies as shards: the merge equals the one-process protocol, shards split any way merge to the
same payload, and a killed study resumes by skipping the shards it finished."""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace
from pathlib import Path

import pytest

from gpa_lib.recsys.eval.protocol import ProtocolConfig, run_protocol
from gpa_lib.recsys.eval.shards import (
    StudySpec,
    merge,
    missing_shards,
    run_study,
    shard_ids,
    shard_path,
)
from gpa_lib.recsys.sim import STORE_PRESETS, simulate_config
from gpa_lib.recsys.sim.config import SimConfig

RESULTS = Path(__file__).resolve().parents[1] / "data" / "results"

MODELS = ("popularity", "static_cf")
PROTOCOL = ProtocolConfig(
    n_cutoffs=2, test_weeks=2, step_weeks=2, seeds=(0, 1), max_customers=150, n_boot=40
)


def tiny_store(seed: int):
    return replace(STORE_PRESETS["smoke"], n_customers=500, n_weeks=20, seed=seed)


def without_timings(payload):
    """``payload`` without its wall times (every ``fit_seconds``, at any depth)."""
    if isinstance(payload, dict):
        return {k: without_timings(v) for k, v in payload.items() if k != "fit_seconds"}
    if isinstance(payload, list):
        return [without_timings(v) for v in payload]
    return payload


def spec(n_stores: int) -> StudySpec:
    stores = tuple(tiny_store(s) for s in range(n_stores))
    return StudySpec("backtest", stores, MODELS, "smoke", PROTOCOL)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_store_merges_to_the_one_process_protocol(tmp_path):
    study = spec(1)
    run_study(study, tmp_path)
    merged = merge(study, tmp_path)
    ref = run_protocol(simulate_config(study.stores[0], progress=False), MODELS, "smoke", PROTOCOL)
    assert merged["models"] == ref["models"]
    for model in ref["models"]:
        for key, cell in ref["summary"][model].items():
            got = merged["summary"][model][key]
            assert (got["estimate"], got["lo"], got["hi"]) == (cell["mean"], cell["lo"], cell["hi"])
    assert without_timings(merged["tuning"][0]) == without_timings(
        json.loads(json.dumps(ref["tuning"]))
    )  # wall times differ on a busy machine


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_shards_split_any_way_merge_to_the_same_payload(tmp_path):
    study = spec(2)
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert len(run_study(study, whole)) == len(shard_ids(study)) == 8
    first = run_study(study, split, shard=(1, 3))
    assert first == shard_ids(study)[1::3]
    with pytest.raises(ValueError, match=r"5 shard\(s\) not done"):
        merge(study, split)
    run_study(study, split, shard=(0, 3))
    run_study(study, split, shard=(2, 3))
    assert without_timings(merge(study, split)) == without_timings(merge(study, whole))
    merged = merge(study, whole)
    gap = merged["comparisons"][0]
    assert gap["gap"]["n"] == 2 and len(gap["store_gaps"]) == 2 and gap["exploratory"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_killed_study_resumes_with_the_missing_shards_only(tmp_path):
    study = spec(1)
    run_study(study, tmp_path)
    lost = shard_ids(study)[2]
    shard_path(tmp_path, lost).unlink()
    (tmp_path / f".{shard_path(tmp_path, lost).name}.abc.tmp").write_bytes(b"half a file")
    kept = {s: os.stat(shard_path(tmp_path, s)).st_mtime_ns for s in shard_ids(study) if s != lost}
    assert missing_shards(study, tmp_path) == [lost]
    assert run_study(study, tmp_path) == [lost]
    assert all(os.stat(shard_path(tmp_path, s)).st_mtime_ns == t for s, t in kept.items())
    assert run_study(study, tmp_path) == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_folder_of_another_study_and_bad_arguments_are_refused(tmp_path):
    run_study(spec(1), tmp_path, shard=(0, 4))
    other = replace(spec(1), models=("popularity",))
    with pytest.raises(ValueError, match="another study"):
        run_study(other, tmp_path)
    with pytest.raises(ValueError, match="shard=4/4"):
        run_study(spec(1), tmp_path, shard=(4, 4))
    with pytest.raises(ValueError, match="repeat"):
        StudySpec("backtest", (tiny_store(0), tiny_store(0)), MODELS, "smoke", PROTOCOL)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_command_line_runs_shards_and_writes_the_merge_when_all_are_done(tmp_path, capsys):
    from gpa_lib.bench.recsys import main

    args = [
        "--study", "backtest", "--store", "smoke", "--customers", "500", "--weeks", "20",
        "--stores", "2", "--cutoffs", "2", "--test-weeks", "2", "--step-weeks", "2",
        "--seeds", "0", "--eval-customers", "100", "--n-boot", "20", "--profile", "smoke",
        "--models", "popularity,static_cf", "--results-dir", str(tmp_path),
        "--study-dir", str(tmp_path / "shards"),
    ]  # fmt: skip
    assert main([*args, "--shard", "0/2"]) == 0
    assert "still to run" in capsys.readouterr().out
    assert not (tmp_path / "backtest_stores.json").exists()
    assert main([*args, "--shard", "1/2"]) == 0
    payload = json.loads((tmp_path / "backtest_stores.json").read_text())
    assert payload["stores"] == [0, 1] and payload["shards"] == 4
    assert payload["summary"]["static_cf"]["warm/auc"]["n"] == 2
    with pytest.raises(SystemExit, match="--shard='2/2'"):
        main([*args, "--shard", "2/2"])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_parallel_jobs_write_the_same_shards(tmp_path):
    study = spec(2)
    run_study(study, tmp_path / "serial")
    assert sorted(run_study(study, tmp_path / "parallel", jobs=2)) == sorted(shard_ids(study))
    serial, parallel = merge(study, tmp_path / "serial"), merge(study, tmp_path / "parallel")
    assert without_timings(serial) == without_timings(parallel)


def test_the_command_line_gives_every_store_its_own_seed_and_the_drift():
    import argparse

    from gpa_lib.bench.recsys import add_arguments, resolve_defaults, result_name, study_spec

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = resolve_defaults(
        parser.parse_args(["--store", "smoke", "--stores", "3", "--seed", "4", "--drift", "0.0"])
    )
    stores = study_spec(args).stores
    assert [s.seed for s in stores] == [4, 5, 6] and {s.drift for s in stores} == {0.0}
    assert {s.n_customers for s in stores} == {STORE_PRESETS["smoke"].n_customers}
    assert result_name(args) == "backtest_stores"


def _tuples(record: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}


def test_the_committed_study_spec_round_trips():
    """``spec.json`` of a study is compared on resume: the committed claims_stores spec rebuilt
    as a StudySpec gives back the same dict."""
    stored = json.loads((RESULTS / "claims_stores.json").read_text())["spec"]
    sim_fields = {f.name for f in fields(SimConfig)}
    rebuilt = StudySpec(
        stored["kind"],
        tuple(
            SimConfig(**{k: v for k, v in _tuples(s).items() if k in sim_fields})
            for s in stored["stores"]
        ),
        tuple(stored["models"]),
        stored["profile"],
        ProtocolConfig(**_tuples(stored["protocol"])),
        stored["oracle"],
    )
    assert rebuilt.to_dict() == stored

"""The study of the paper's three Fashion DNA inputs (tags only, image only, both) on a store whose
images show part of the latent and on its control, and its bench entry."""

from __future__ import annotations

import json

import matplotlib
import pytest
import torch

from gpa_lib.book.project import BookProject
from gpa_lib.recsys.eval.dna_variants import (
    VARIANT_GAPS,
    VARIANTS,
    plot_variants,
    run_variants,
    variant_params,
    variants_glue,
    variants_study,
    variants_table,
)
from gpa_lib.recsys.eval.protocol import ProtocolConfig
from gpa_lib.recsys.sim import STORE_PRESETS, simulate
from gpa_lib.results import RESULTS_ENV

matplotlib.use("Agg")
torch.set_num_threads(1)


def test_variant_params_name_the_variant():
    with pytest.raises(ValueError, match="name='colour' is not one of"):
        variant_params("colour")
    with pytest.raises(ValueError, match="image_dim=0"):
        variant_params("both", image_dim=0)
    assert variant_params("image", image_dim=4)["use_attributes"] is False


TINY = {"articles_per_week": 20, "attribute_share": 0.5}
PROTOCOL = ProtocolConfig(
    n_cutoffs=2, test_weeks=2, step_weeks=2, seeds=(0, 1), max_customers=200, n_boot=30
)


@pytest.fixture(scope="module")
def study():
    stores = {
        "images": simulate(500, 14, seed=3, progress=False, image_share=0.3, **TINY),
        "control": simulate(500, 14, seed=3, progress=False, **TINY),
    }
    return variants_study(stores, "smoke", PROTOCOL, image_dim=4, image_batch=256)


def test_study_reports_every_variant_slice_and_gap_with_intervals(study):
    assert set(study["stores"]) == {"images", "control"} and study["control"] == "control"
    for label, share in (("images", 0.3), ("control", 0.0)):
        store = study["stores"][label]
        assert store["store"]["image_share"] == share
        assert store["variants"] == list(VARIANTS) and len(store["windows"]) == 2
        assert store["settings"]["image"]["use_attributes"] is False
        assert store["settings"]["tags"]["image_dim"] == 0
        for variant in VARIANTS:
            for key in ("all/auc", "cold/auc", "warm/auc", "all/map@12", "cold/map@12"):
                stats = store["summary"][variant][key]
                assert stats["lo"] <= stats["mean"] <= stats["hi"], (label, variant, key)
            assert len(store["per_cutoff"][variant]["cold/auc"]) == 2  # seeds x cutoffs
        assert len(store["gaps"]) == len(VARIANT_GAPS) * 3 * 4  # gaps x slices x metrics
    recovery = study["stores"]["images"]["recovery_r2"]
    assert {"known/latent", "known/attribute_part", "known/image_part"} <= set(recovery["both"])
    assert "known/image_part" not in study["stores"]["control"]["recovery_r2"]["both"]
    gains = study["image_gain"]
    assert len(gains) == len(VARIANT_GAPS) * 3 * 4 and {g["store"] for g in gains} == {"images"}
    assert all(g["lo"] <= g["hi"] for g in gains)


def test_study_table_figure_and_glue(study):
    table = variants_table(study)
    assert table.shape == (6, 6) and table.index.names == ["store", "DNA from"]
    figure = plot_variants(study)
    assert figure.axes[0].get_ylabel().startswith("mean per-customer AUC")
    assert all(ax.get_xlabel() for ax in figure.axes)
    glued = variants_glue(study)
    assert set(glued) == {"ch4_var_measured", "ch4_var_data", "ch4_var_interval"}
    assert "new articles" in glued["ch4_var_measured"] and "control" in glued["ch4_var_measured"]
    assert "500 customers" in glued["ch4_var_data"]
    missing = variants_glue(None)
    assert "--study dna-variants" in missing["ch4_var_measured"]


def test_run_variants_on_one_store_without_control():
    data = simulate(300, 12, seed=1, progress=False, image_share=0.3, **TINY)
    config = ProtocolConfig(n_cutoffs=1, test_weeks=2, seeds=(0,), max_customers=100, n_boot=10)
    payload = run_variants(data, "smoke", config, image_dim=4, image_batch=64, variants=("tags",))
    assert payload["variants"] == ["tags"] and payload["gaps"] == []
    with pytest.raises(ValueError, match="control='none' is not one of the stores"):
        variants_study({"images": data}, "smoke", config, control="none")


# ---------------------------------------------------------------------- the bench entry


BENCH = ["--study", "dna-variants", "--customers", "400", "--weeks", "12", "--profile", "smoke"]
BENCH += ["--image-dim", "4", "--image-batch", "128", "--seeds", "0", "--cutoffs", "1"]
BENCH += ["--test-weeks", "2", "--eval-customers", "150", "--n-boot", "20"]


def test_bench_dna_variants_writes_the_study(tmp_path, capsys):
    from gpa_lib.bench.recsys import main

    assert main([*BENCH, "--results-dir", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "dna_variants.json").read_text())
    assert {"stores", "control", "image_gain", "protocol", "preset", "provenance"} <= set(document)
    assert document["preset"] == "images" and document["protocol"]["n_cutoffs"] == 1
    assert document["stores"]["images"]["store"]["image_share"] == 0.3
    assert document["stores"]["control"]["store"]["image_share"] == 0.0
    assert document["stores"]["images"]["store"]["customers"] == 400
    assert document["provenance"]["profile"] == "smoke"
    out = capsys.readouterr().out
    assert "tags and image" in out and "dna_variants.json" in out


def test_bench_dna_variants_refuses_dirty_code_and_a_store_without_image_part(monkeypatch):
    from gpa_lib.bench import recsys

    monkeypatch.delenv(RESULTS_ENV, raising=False)
    monkeypatch.setattr(recsys, "git_commit", lambda: "0123abc-dirty")
    with pytest.raises(SystemExit, match="commit='0123abc-dirty': commit the code first"):
        recsys.main(BENCH)  # would write into data/results
    with pytest.raises(ValueError, match="store='smoke' has image_share=0"):
        recsys.main([*BENCH, "--store", "smoke", "--no-write"])


def test_chapter_4_full_profile_reads_the_image_on_a_store_whose_image_says_more():
    """The chapter's own Fashion DNA (profile ``full``) runs the image CNN, on a store where the
    image shows part of the latent; the benchmark variants are not its only image path."""
    project = BookProject()
    nb = project.notebook("04_fashion_dna")
    full = nb.parameters | project.parameters_for(nb, "full")
    params = variant_params(full["dna_inputs"])
    assert params["image_dim"] > 0 and params.get("use_attributes", True)
    assert STORE_PRESETS[full["store"]].image_share > 0
    smoke = nb.parameters | project.parameters_for(nb, "smoke")
    assert variant_params(smoke["dna_inputs"])["image_dim"] > 0  # CI runs the image path too

"""Interactive figures: the trade-off grid against gpa_quality, the linked controls, the backtest figure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from gpa_lib.attention.analysis.diagnostics import gpa_quality
from gpa_lib.attention.analysis.tradeoff import quality_rows, tradeoff_grid, valid_setting

pytest.importorskip("plotly", reason="interactive figures need plotly (the book extra)")

from gpa_lib.interactive import Control, LinkedFigure, UpdateGroup  # noqa: E402
from gpa_lib.interactive.backtest import ALL_MODELS, backtest_figure  # noqa: E402
from gpa_lib.interactive.sphinx import needs_plotly  # noqa: E402
from gpa_lib.interactive.tradeoff import tradeoff_figure  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "interactive" / "backtest.json"
RATES = {"flops_per_s": 5e10, "bytes_per_s": 1e10}


def spec_of(html: str) -> dict:
    return json.loads(re.search(r"var spec = (\{.*\});\n", html).group(1).replace("<\\/", "</"))


@pytest.mark.parametrize("affinity", ["euclid", "dot"])
def test_quality_rows_match_gpa_quality_setting_by_setting(affinity):
    """The shared computation gives gpa_quality's numbers on awkward sizes: non-square query and
    key grids of different sizes, three heads, head dim 24."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 3, 8, 16, 24, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 3, 16, 8, 24, generator=gen, dtype=torch.float64)
    v = torch.randn(1, 3, 16, 8, 24, generator=gen, dtype=torch.float64)
    rows = quality_rows(
        q, k, v, topk_values=[1, 3, 9], pool_values=[1, 2, 4], cell_values=[4, 8], affinity=affinity
    )
    assert len(rows) == 3 * 2 * 3 - 2  # pool 4 has 8 key blocks: topk 9 is left out at both cells
    for row in rows:
        ref = gpa_quality(
            q, k, v, pool=row["pool"], cell=row["cell"], topk=row["topk"], affinity=affinity
        )
        assert row["mass_mean"] == pytest.approx(ref.mass_mean, rel=1e-9, abs=1e-12), row
        assert row["error_total"] == pytest.approx(ref.error_total, rel=1e-9, abs=1e-12), row
        assert row["keys_fraction"] == pytest.approx(ref.keys_fraction)


def test_topk_covering_every_block_keeps_all_mass_and_no_error():
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 1, 8, 8, 16, generator=gen, dtype=torch.float64) for _ in range(3))
    (row,) = quality_rows(q, k, v, topk_values=[16], pool_values=[2], cell_values=[4])
    assert row["mass_mean"] == pytest.approx(1.0)
    assert row["error_total"] == pytest.approx(0.0, abs=1e-12)


def test_valid_setting_names_the_argument():
    assert valid_setting((8, 8), (8, 8), 2, 4, 4) is None
    assert "cell=4 is not a multiple of pool=8" in valid_setting((16, 16), (16, 16), 8, 4, 1)
    assert "topk=5" in valid_setting((4, 4), (4, 4), 2, 2, 5)


def test_tradeoff_grid_rejects_features_of_different_shapes():
    a = torch.zeros(1, 1, 8, 8, 4)
    b = torch.zeros(1, 1, 4, 4, 4)
    with pytest.raises(ValueError, match="share their shapes"):
        tradeoff_grid(
            {"a": (a, a, a), "b": (b, b, b)},
            topk_values=[1], pool_values=[2], cell_values=[4], affinity="dot", **RATES,
        )  # fmt: skip
    with pytest.raises(ValueError, match="features is empty"):
        tradeoff_grid(
            {}, topk_values=[1], pool_values=[2], cell_values=[4], affinity="dot", **RATES
        )


@pytest.fixture(scope="module")
def small_grid():
    gen = torch.Generator().manual_seed(2)
    image = [torch.randn(1, 1, 16, 16, 8, generator=gen) for _ in range(3)]
    noise = [torch.randn(1, 1, 16, 16, 8, generator=gen) for _ in range(3)]
    grid = tradeoff_grid(
        {"image-like": tuple(image), "random": tuple(noise)},
        topk_values=[1, 4], pool_values=[2, 8], cell_values=[4, 8], affinity="euclid", **RATES,
    )  # fmt: skip
    return grid


def test_tradeoff_figure_has_an_entry_for_every_slider_position(small_grid):
    assert len(small_grid) == 6  # pool 8 with cell 4 is no setting; pool 8 has 4 blocks, topk <= 4
    figure = tradeoff_figure(
        small_grid,
        features=["image-like", "random"],
        initial={"topk": 4, "pool": 2, "cell": 8},
        q_grid=(16, 16),
        k_grid=(16, 16),
    )
    spec = spec_of(figure.html())
    assert [c["name"] for c in spec["controls"]] == ["topk", "pool", "cell"]
    (group,) = spec["groups"]
    assert len(group["table"]) == 2 * 2 * 2
    shown = group["table"]["4|2|8"]
    row = small_grid.set_index(["topk", "pool", "cell"]).loc[(4, 2, 8)]
    assert shown["traces"]["2"]["x"][:2] == pytest.approx(
        [row["mass_mean/image-like"], row["mass_mean/random"]]
    )
    assert spec["data"][2]["x"] == shown["traces"]["2"]["x"]  # the figure starts there
    assert "not a multiple of pool=8" in group["table"]["1|8|4"]["layout"]["title.text"]
    assert [s["active"] for s in spec["layout"]["sliders"]] == [1, 0, 1]


def test_linked_figure_html_is_self_contained_and_reproducible(small_grid):
    args = dict(features=["image-like"], initial={"topk": 1, "pool": 2, "cell": 4})
    one = tradeoff_figure(small_grid, q_grid=(16, 16), k_grid=(16, 16), **args).html()
    two = tradeoff_figure(small_grid, q_grid=(16, 16), k_grid=(16, 16), **args).html()
    assert one == two  # the div id is a hash of the content: executed notebooks do not churn
    assert needs_plotly(one)
    assert "cdn" not in one.lower() and "https://" not in one
    assert "</script>" not in one.split("<script", 1)[1][:-10]  # the spec cannot end the script


def test_linked_figure_rejects_bad_controls():
    import plotly.graph_objects as go

    with pytest.raises(ValueError, match="kind='knob'"):
        Control("a", "a", ["x"], kind="knob")
    with pytest.raises(ValueError, match="initial=3"):
        Control("a", "a", ["x"], initial=3)
    with pytest.raises(ValueError, match="unknown controls"):
        LinkedFigure(go.Figure(), [Control("a", "a", ["x"])], [UpdateGroup(["b"], {})])
    with pytest.raises(ValueError, match="no entry 'x'"):
        LinkedFigure(go.Figure(), [Control("a", "a", ["x"])], [UpdateGroup(["a"], {"y": {}})])


def test_backtest_figure_reads_the_results_layout():
    payload = json.loads(FIXTURE.read_text())
    figure = backtest_figure(payload, initial={"model": "lstm", "slice": "cold", "metric": "auc"})
    spec = spec_of(figure.html())
    controls = {c["name"]: c for c in spec["controls"]}
    assert controls["model"]["keys"] == [ALL_MODELS, "popularity", "lstm", "oracle"]
    assert controls["slice"]["labels"] == ["all", "new", "known"]
    assert controls["metric"]["keys"] == ["auc", "map@12"]
    views, highlights = spec["groups"]
    assert len(views["table"]) == 3 * 2 and len(highlights["table"]) == 4
    view = views["table"]["cold|auc"]["traces"]
    lstm = payload["summary"]["lstm"]["cold/auc"]
    assert view["0"]["x"][1] == lstm["mean"]
    assert view["0"]["error_x.array"][1] == pytest.approx(lstm["hi"] - lstm["mean"])
    assert view["0"]["error_x.arrayminus"][1] == pytest.approx(lstm["mean"] - lstm["lo"])
    seeds = payload["per_cutoff"]["lstm"]["cold/auc"]
    assert view["2"]["y"] == pytest.approx([(seeds[0][0] + seeds[1][0]) / 2, seeds[0][1]])
    assert spec["data"][0]["x"] == view["0"]["x"]  # starts at the chosen view
    assert "90% interval" in spec["layout"]["annotations"][0]["text"]


def test_backtest_figure_rejects_unknown_metrics():
    payload = json.loads(FIXTURE.read_text())
    with pytest.raises(ValueError, match=r"metrics=\['hit@5'\]"):
        backtest_figure(payload, metrics=["hit@5"])

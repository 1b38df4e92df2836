"""The one dense-or-GPA switch (:func:`gpa_lib.attention.dense_or_gpa`): the ``GPA`` layer and the
pose generators' attention layers go through it, and their parameter names and outputs are those
recorded before they shared it (``fixtures/pose_attention_golden.pt``: smoke generators and ``GPA``
layers at fixed seeds on tiny inputs, recorded on the CPU, float32)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpa_lib.attention import GPA, dense_attention, dense_or_gpa, gpa_attention
from gpa_lib.pose.config import model_config
from gpa_lib.pose.models import build_model
from gpa_lib.pose.models.blocks import attend

GOLDEN = Path(__file__).parent / "fixtures" / "pose_attention_golden.pt"


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    source = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    source_pose = torch.rand(1, 18, 32, 32, generator=g)
    target_pose = torch.rand(1, 18, 32, 32, generator=g)
    return source, source_pose, target_pose


def close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def golden():
    return torch.load(GOLDEN)


@pytest.mark.parametrize("name", ["gpa", "coarse", "dense"])
def test_pose_generators_keep_their_parameter_names_and_outputs(name, golden):
    torch.manual_seed(0)
    model = build_model(model_config(name, "smoke"))
    with torch.no_grad():
        details = model(*_inputs(), details=True)
    recorded = golden[name]
    assert list(model.state_dict()) == recorded["keys"]
    # float outputs within float32 rounding (the fixture was recorded on another CPU, maybe with
    # other SIMD paths); parameter names and selections exactly
    close(details["image"], recorded["image"])
    if recorded["weights"] is not None:
        close(details["weights"], recorded["weights"])
    assert sorted(details["selections"]) == sorted(recorded["selections"])
    for scale, selection in recorded["selections"].items():
        assert torch.equal(details["selections"][scale], selection)


@pytest.mark.parametrize("dense_below", [0, 64])
def test_gpa_layer_keeps_its_parameter_names_and_outputs(dense_below, golden):
    torch.manual_seed(1)
    layer = GPA(
        8, context_channels=5, heads=2, head_dim=4, pool=2, cell=4, topk=3, dense_below=dense_below
    )
    g = torch.Generator().manual_seed(2)
    x, context = torch.randn(1, 8, 8, 8, generator=g), torch.randn(1, 5, 12, 8, generator=g)
    with torch.no_grad():
        out, selection = layer(x, context, return_selection=True)
        plain = layer(x, context)
    recorded = golden[f"layer{dense_below}"]
    assert list(layer.state_dict()) == recorded["keys"]
    close(out, recorded["out"])
    close(plain, recorded["out_plain"])
    if recorded["selection"] is None:  # 8 x 8 = 64 query pixels: at or below dense_below
        assert selection is None
    else:
        assert torch.equal(selection, recorded["selection"])


def test_the_switch_is_the_functional_ops_and_the_pose_door_reads_the_config():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(2, 2, 8, 12, 6, generator=g), torch.randn(2, 2, 8, 8, 6, generator=g)
    v = torch.randn(2, 2, 8, 8, 3, generator=g)
    sizes = {"pool": 2, "cell": 4, "topk": 3}
    out, selection = dense_or_gpa(q, k, v, "gpa", **sizes, return_selection=True)
    expected, expected_selection = gpa_attention(q, k, v, **sizes, return_selection=True)
    assert torch.equal(out, expected) and torch.equal(selection, expected_selection)
    for impl in ("fused", "materialised"):
        out, selection = dense_or_gpa(
            q, k, v, "dense", **sizes, dense_impl=impl, return_selection=True
        )
        assert torch.equal(out, dense_attention(q, k, v, impl=impl)) and selection is None
    config = model_config("gpa", "smoke")
    q, k, v = (torch.randn(1, 1, 16, 16, d, generator=g) for d in (6, 6, 3))  # cells of the config
    assert torch.equal(
        attend(q, k, v, "gpa", config),
        dense_or_gpa(
            q,
            k,
            v,
            "gpa",
            pool=config.pool,
            cell=config.cell,
            topk=config.topk,
            affinity=config.affinity,
            backend=config.backend,
        ),
    )
    with pytest.raises(ValueError, match=r"kind='sparse' must be one of \('dense', 'gpa'\)"):
        dense_or_gpa(q, k, v, "sparse", **sizes)

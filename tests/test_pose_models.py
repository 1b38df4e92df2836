"""The pose generators: shapes, the copying path, GPA against dense, padding, memory measurement."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gpa_lib.pose.config import TRAIN_PRESETS, ModelConfig, model_config
from gpa_lib.pose.models import attention_memory, build_model, count_parameters
from gpa_lib.pose.models.blocks import attend, attention_layers, capturing_layers


def _inputs(batch=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    source = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    source_pose = torch.rand(batch, 18, size, size, generator=g)
    target_pose = torch.rand(batch, 18, size, size, generator=g)
    return source, source_pose, target_pose


@pytest.mark.parametrize("name", ["gpa", "coarse", "dense", "unet"])
def test_every_model_maps_inputs_to_an_image_in_range(name):
    torch.manual_seed(0)
    model = build_model(model_config(name, "smoke"))
    out = model(*_inputs())
    assert out.shape == (2, 3, 32, 32)
    assert out.abs().max() <= 1
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_full_scale_models_have_a_few_hundred_thousand_parameters_each():
    counts = {
        name: count_parameters(build_model(TRAIN_PRESETS[f"{name}-full"].model))
        for name in ("gpa", "coarse", "dense", "unet")
    }
    assert all(2e5 <= c <= 8e5 for c in counts.values()), counts
    assert counts["gpa"] == counts["dense"]  # same layers, only the attention differs
    assert abs(counts["unet"] - counts["gpa"]) / counts["gpa"] < 0.25


def test_details_expose_copy_weights_and_gpa_selections():
    torch.manual_seed(0)
    config = model_config("gpa", "smoke")
    model = build_model(config)
    out = model(*_inputs(), details=True)
    assert out["weights"].shape == (2, 1 + config.copy_heads, 32, 32)
    torch.testing.assert_close(out["weights"].sum(1), torch.ones(2, 32, 32))
    assert out["copied"].shape == (2, config.copy_heads, 3, 32, 32)
    # GPA at full resolution (scale 0) and at 1/2 (scale 1), dense at the coarsest scale.
    assert sorted(out["selections"]) == [0, 1]
    assert out["selections"][0].shape == (
        2,
        config.copy_heads,
        32 // config.cell,
        32 // config.cell,
        config.topk,
    )
    torch.testing.assert_close(out["image"], model(*_inputs()))


def test_copied_pixels_are_convex_combinations_of_source_pixels():
    torch.manual_seed(0)
    model = build_model(model_config("gpa", "smoke"))
    source, source_pose, target_pose = _inputs(batch=1)
    source = torch.full_like(source, 0.25)  # a flat source: every copy must return exactly it
    copied = model(source, source_pose, target_pose, details=True)["copied"]
    torch.testing.assert_close(copied, torch.full_like(copied, 0.25))


def test_gpa_with_every_key_block_equals_the_dense_model():
    torch.manual_seed(0)
    gpa_config = model_config("gpa", "smoke")
    # At 32 px the full-resolution grid has (32/2)^2 = 256 key blocks of 2x2; at 16 px 64 blocks.
    # topk=64 covers every block at 16 px only, so compare single layers instead of whole models.
    q = torch.randn(2, 1, 16, 16, 8, dtype=torch.float64)
    k = torch.randn(2, 1, 16, 16, 8, dtype=torch.float64)
    v = torch.randn(2, 1, 16, 16, 3, dtype=torch.float64)
    full = dataclasses.replace(gpa_config, topk=64)
    torch.testing.assert_close(attend(q, k, v, "gpa", full), attend(q, k, v, "dense", full))
    torch.testing.assert_close(
        attend(q, k, v, "dense", full, dense_impl="materialised"),
        attend(q, k, v, "dense", full, dense_impl="fused"),
    )


def test_odd_sizes_are_padded_and_cropped():
    torch.manual_seed(0)
    for name in ("gpa", "unet"):
        model = build_model(model_config(name, "smoke"))
        source, source_pose, target_pose = _inputs(batch=1, size=40)
        out = model(source[..., :36], source_pose[..., :36], target_pose[..., :36])
        assert out.shape == (1, 3, 40, 36)


def test_attention_memory_of_gpa_is_a_fraction_of_materialised_dense():
    torch.manual_seed(0)
    source, source_pose, target_pose = _inputs(batch=1, size=64)
    batch = {"source": source, "source_pose": source_pose, "target_pose": target_pose}
    gpa = attention_memory(build_model(TRAIN_PRESETS["gpa-full"].model), batch)
    dense = build_model(TRAIN_PRESETS["dense-full"].model)
    materialised = attention_memory(dense, batch, dense_impl="materialised")
    assert [c["kind"] for c in gpa["calls"]] == ["dense", "dense", "gpa", "gpa"]
    assert gpa["calls"][-1]["grid"] == [64, 64]
    # The 64x64 score matrix alone is 4096^2 float32 = 64 MiB.
    assert materialised["peak_forward_bytes"] >= 4096**2 * 4
    assert gpa["peak_forward_bytes"] * 4 <= materialised["peak_forward_bytes"]
    assert gpa["peak_training_bytes"] * 4 <= materialised["peak_training_bytes"]
    unet = attention_memory(build_model(TRAIN_PRESETS["unet-full"].model), batch)
    assert unet == {
        "calls": [],
        "complete": True,
        "peak_forward_bytes": 0,
        "peak_training_bytes": 0,
    }
    # Past the limit, a materialised dense call is predicted by the complexity model, not run.
    predicted = attention_memory(
        dense, batch, dense_impl="materialised", max_materialised_bytes=2**20
    )
    assert not predicted["complete"]
    big = [c for c in predicted["calls"] if not c["measured"]]
    assert [c["grid"] for c in big] == [[32, 32], [64, 64]]  # calls go from coarse to fine
    assert big[-1]["training_bytes"] is None
    ratio = big[-1]["forward_bytes"] / materialised["calls"][-1]["forward_bytes"]
    assert 0.8 <= ratio <= 1.25


def test_bad_configs_name_the_argument():
    with pytest.raises(ValueError, match="attention="):
        ModelConfig(attention=("gpa", "dense"))
    with pytest.raises(ValueError, match="cell=6 must be a multiple of pool=4"):
        ModelConfig(cell=6)
    with pytest.raises(ValueError, match="kind="):
        ModelConfig(kind="vae")
    with pytest.raises(ValueError, match="name="):
        model_config("transformer")


def test_capturing_layers_hands_over_every_call_and_then_stops():
    torch.manual_seed(0)
    model = build_model(model_config("gpa", "smoke"))
    layers = attention_layers(model)
    assert layers and "gpa" in {layer.kind for layer in layers}
    with capturing_layers(model) as calls, torch.no_grad():
        model(*_inputs())
    assert len(calls) >= len(layers)
    for layer, q, k, v in calls:
        assert layer in layers and q.dim() == k.dim() == v.dim() == 5 and not q.requires_grad
    assert all(layer.capture is None for layer in layers)
    with pytest.raises(RuntimeError, match="boom"), capturing_layers(model):
        raise RuntimeError("boom")
    assert all(layer.capture is None for layer in layers)

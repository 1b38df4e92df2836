"""The GPA nn.Module: a thin layer over gpa_attention, for self- and cross-attention."""

from __future__ import annotations

import pytest
import torch

from gpa_lib.attention import GPA, dense_attention, gpa_attention


def make(**kwargs):
    torch.manual_seed(0)
    return GPA(6, heads=3, head_dim=8, pool=2, cell=4, topk=3, **kwargs).double()


def test_self_attention_shape_and_residual():
    layer = make()
    x = torch.randn(2, 6, 8, 12, dtype=torch.float64)
    out, selection = layer(x, return_selection=True)
    assert out.shape == x.shape
    assert selection.shape == (2, 3, 2, 3, 3)
    q, k, v = layer.project(x)
    att = gpa_attention(q, k, v, pool=2, cell=4, topk=3)  # (B, h, H, W, Dv)
    expected = x + layer.proj(att.permute(0, 1, 4, 2, 3).reshape(2, 24, 8, 12))
    torch.testing.assert_close(out, expected)


def test_cross_attention_to_a_context_of_another_size_and_width():
    torch.manual_seed(0)
    layer = GPA(
        6,
        context_channels=5,
        heads=1,
        head_dim=24,
        value_dim=4,
        pool=2,
        cell=4,
        topk=2,
        affinity="euclid",
    ).double()
    x = torch.randn(1, 6, 8, 4, dtype=torch.float64)  # target image
    context = torch.randn(1, 5, 6, 10, dtype=torch.float64)  # source image, other size
    assert layer(x, context).shape == (1, 6, 8, 4)


def test_backward_reaches_every_parameter():
    layer = make().float()
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    layer(x).square().mean().backward()
    assert x.grad is not None
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_small_maps_use_dense_attention():
    layer = make(dense_below=64)
    x = torch.randn(1, 6, 8, 8, dtype=torch.float64)  # 64 pixels: dense
    q, k, v = layer.project(x)
    att = dense_attention(q, k, v).permute(0, 1, 4, 2, 3).reshape(1, 24, 8, 8)
    torch.testing.assert_close(layer(x), x + layer.proj(att))


def test_bad_construction_is_an_error():
    with pytest.raises(ValueError, match="affinity='cos' is unknown"):
        GPA(4, affinity="cos")
    with pytest.raises(ValueError, match="heads=0 must be a positive int"):
        GPA(4, heads=0)

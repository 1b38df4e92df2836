"""Pose metrics: known values, the foreground variants, the spread summaries, the optional metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpa_lib.pose import metrics


def test_ssim_is_one_for_identical_images_and_matches_the_closed_form_for_constants():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(metrics.ssim(x, x), torch.ones(2))
    # Two flat images a and b: sigma terms vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01*2)^2.
    a, b = 0.5, -0.25
    c1 = (0.01 * metrics.DATA_RANGE) ** 2
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)
    value = metrics.ssim(torch.full((1, 3, 32, 32), a), torch.full((1, 3, 32, 32), b))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_psnr_and_l1_of_a_constant_offset():
    target = torch.zeros(1, 3, 16, 16)
    pred = target + 0.1
    # MSE 0.01 and range 2: 10 log10(4 / 0.01) = 26.02 dB.
    assert metrics.psnr(pred, target).item() == pytest.approx(10 * math.log10(400), rel=1e-6)
    assert metrics.l1(pred, target).item() == pytest.approx(0.1, rel=1e-6)


def test_foreground_metrics_only_see_the_foreground():
    target = torch.zeros(2, 3, 16, 16)
    pred = target.clone()
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    pred[:, :, 4:12, 4:12] += 0.2  # error only inside the foreground
    assert metrics.l1(pred, target, mask) == pytest.approx([0.2, 0.2])
    assert metrics.l1(pred, target).tolist() == pytest.approx([0.2 * 64 / 256] * 2)
    assert metrics.psnr(pred, target, mask).tolist() == pytest.approx(
        [10 * math.log10(4 / 0.04)] * 2
    )
    # With a full mask the foreground variants equal the whole-image ones.
    full = torch.ones(2, 1, 16, 16)
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(metrics.ssim(x, y, full), metrics.ssim(x, y))
    torch.testing.assert_close(metrics.psnr(x, y, full), metrics.psnr(x, y))
    # The foreground SSIM of a perfect foreground with a bad background is higher than the whole one.
    noisy = target + 0.5 * torch.randn(2, 3, 16, 16) * (1 - mask)
    assert (metrics.ssim(noisy, target, mask) > metrics.ssim(noisy, target)).all()


def test_bad_shapes_and_empty_masks_are_errors():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="pred and target"):
        metrics.l1(x, x[:1])
    with pytest.raises(ValueError, match="mask must be"):
        metrics.l1(x, x, torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match="mask is empty"):
        metrics.l1(x, x, torch.zeros(2, 1, 8, 8))


def test_evaluate_returns_per_pair_values_and_summaries_have_their_spread():
    batches = [{"target": torch.zeros(2, 3, 8, 8), "target_mask": torch.ones(2, 1, 8, 8)}] * 3
    values = metrics.evaluate(lambda b: b["target"] + 0.1, batches)
    assert set(values) == set(metrics.METRIC_NAMES)
    assert values["l1"].shape == (6,)
    s = metrics.summarize(np.array([1.0, 2.0, 3.0, 4.0]))
    assert s["mean"] == 2.5 and s["n"] == 4
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert s["sem"] == pytest.approx(s["std"] / 2)
    d = metrics.paired_difference(np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.5, 2.5]))
    assert d["mean"] == pytest.approx(0.5) and d["std"] == pytest.approx(0.0)


def test_fid_and_lpips_say_why_they_cannot_run_without_local_weights(tmp_path):
    status = metrics.optional_metric_status(
        fid_weights=tmp_path / "missing.pth", lpips_weights=tmp_path / "missing.pth"
    )
    assert status["fid"] is not None and status["lpips"] is not None
    with pytest.raises(RuntimeError, match="FID is not available here"):
        metrics.fid(
            torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), weights=tmp_path / "missing.pth"
        )
    with pytest.raises(RuntimeError, match="LPIPS is not available here"):
        metrics.lpips(
            torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), weights=tmp_path / "missing.pth"
        )

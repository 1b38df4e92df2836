"""Training: data order, resumption to identical weights, atomic checkpoints, the CLI, torchrun DDP."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gpa_lib.pose.config import preset
from gpa_lib.pose.losses import GeneratorLoss, VGGPerceptualLoss, _vgg19_features
from gpa_lib.pose.models import build_model
from gpa_lib.pose.train import (
    CHECKPOINT,
    _rng_state,
    _set_rng_state,
    batch_indices,
    learning_rate,
    load_checkpoint,
    load_data,
    main,
    predict,
    save_checkpoint,
    train,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_data():
    return load_data(preset("gpa-smoke"))


class Crash(Exception):
    pass


def test_batches_cover_every_pair_once_per_epoch_and_shards_split_the_batch():
    n, batch = 10, 4  # 2 steps per epoch, the last 2 pairs of each permutation unused
    epoch0 = torch.cat([batch_indices(3, t, n, batch) for t in range(2)])
    assert len(set(epoch0.tolist())) == 8
    torch.testing.assert_close(batch_indices(3, 1, n, batch), batch_indices(3, 1, n, batch))
    assert not torch.equal(batch_indices(3, 0, n, batch), batch_indices(3, 2, n, batch))
    shards = [batch_indices(3, 5, n, batch, rank, 2) for rank in range(2)]
    assert sorted(torch.cat(shards).tolist()) == sorted(batch_indices(3, 5, n, batch).tolist())


def test_learning_rate_warms_up_then_decays_to_the_final_ratio():
    config = preset("gpa-full")
    assert learning_rate(config, 0) == pytest.approx(config.lr / config.warmup_steps)
    assert learning_rate(config, config.warmup_steps) == pytest.approx(config.lr)
    assert learning_rate(config, config.steps) == pytest.approx(config.lr * config.lr_final_ratio)


@pytest.mark.parametrize("gan_weight", [0.0, 0.1])
def test_a_killed_run_resumed_ends_with_the_same_weights(tmp_path, tiny_data, gan_weight):
    config = preset("gpa-smoke").replace(gan_weight=gan_weight)
    train_data, test_data = tiny_data
    whole = train(config, train_data, test_data, out_dir=tmp_path / "whole", progress=False)

    def crash_after_step_5(step, _):  # the checkpoint is at step 3: steps 4 and 5 are lost
        if step == 5:
            raise Crash

    with pytest.raises(Crash):
        train(
            config,
            train_data,
            test_data,
            out_dir=tmp_path / "killed",
            progress=False,
            callback=crash_after_step_5,
        )
    assert load_checkpoint(tmp_path / "killed" / CHECKPOINT)["step"] == 3
    resumed = train(config, train_data, test_data, out_dir=tmp_path / "killed", progress=False)
    assert resumed.resumed_from == 3 and resumed.steps_done == config.steps
    for (name, a), b in zip(
        whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.history["loss"] == whole.history["loss"]
    assert resumed.history["val_ssim"] == whole.history["val_ssim"]
    state = load_checkpoint(tmp_path / "killed" / CHECKPOINT)
    assert state["step"] == config.steps and (state["discriminator"] is None) == (gan_weight == 0)
    assert [p.name for p in (tmp_path / "killed").iterdir()] == [CHECKPOINT]  # no temporary files


def test_resuming_with_another_config_is_an_error(tmp_path, tiny_data):
    config = preset("unet-smoke").replace(steps=2)
    train(config, tiny_data[0], out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="lr: 0.002 -> 0.001"):
        train(config.replace(lr=1e-3), tiny_data[0], out_dir=tmp_path, progress=False)
    more = train(config.replace(steps=3), tiny_data[0], out_dir=tmp_path, progress=False)
    assert more.resumed_from == 2 and more.steps_done == 3


def _draws() -> tuple:
    """A few draws from every RNG a checkpoint restores (the Gaussians use their cached halves)."""
    return (
        random.random(),
        random.gauss(0, 1),
        tuple(np.random.rand(3)),
        np.random.standard_normal(),
        tuple(torch.rand(3).tolist()),
    )


def test_rng_states_round_trip_a_weights_only_checkpoint_bit_for_bit(tmp_path):
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    # Leave a cached Gaussian in both states.
    random.gauss(0, 1)
    np.random.standard_normal()
    save_checkpoint(tmp_path / CHECKPOINT, {"rng": _rng_state()})
    expected = _draws()
    _draws()  # move every generator on
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)  # plain tensors and numbers
    _set_rng_state(state["rng"])
    assert _draws() == expected
    _set_rng_state(load_checkpoint(tmp_path / CHECKPOINT)["rng"])
    assert _draws() == expected


UNPICKLED = []


class Intruder:
    """An arbitrary object: unpickling it would run its ``__setstate__``."""

    def __init__(self):
        self.payload = "code that should not run"

    def __setstate__(self, state):
        UNPICKLED.append(state)


def test_a_checkpoint_holding_a_pickled_object_is_refused_naming_the_file(tmp_path, tiny_data):
    path = tmp_path / CHECKPOINT
    torch.save({"step": 1, "model": {}, "extra": Intruder()}, path)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} is refused: .*Intruder"):
        load_checkpoint(path)
    # Resuming reads it the same way: refused, and the object was never built.
    config = preset("unet-smoke").replace(steps=1)
    with pytest.raises(ValueError, match="weights_only=True"):
        train(config, tiny_data[0], out_dir=tmp_path, progress=False)
    assert UNPICKLED == []


def test_perceptual_loss_needs_local_weights_and_loads_them(tmp_path):
    with pytest.raises(ValueError, match="never downloads"):
        GeneratorLoss(preset("gpa-smoke").replace(perceptual_weight=1.0))
    torch.manual_seed(0)
    weights = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in _vgg19_features().state_dict().items()}, weights)
    loss = VGGPerceptualLoss(weights)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0
    assert loss(x, -x).item() > 0
    with pytest.raises(FileNotFoundError, match="perceptual_weights="):
        VGGPerceptualLoss(tmp_path / "absent.pth")


def test_cli_trains_and_writes_test_metrics(tmp_path):
    out = tmp_path / "run"
    assert main(["--preset", "unet-smoke", "--out", str(out), "--steps", "2", "--no-progress"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["steps"] == 2 and report["test"]["ssim"]["n"] == 8
    assert set(report["test"]) == {"ssim", "ssim_fg", "psnr", "psnr_fg", "l1", "l1_fg"}


def test_torchrun_with_two_cpu_processes_matches_one_process(tmp_path, tiny_data):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "gpa_lib.pose.train",
        "--preset",
        "gpa-smoke",
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = load_checkpoint(out / CHECKPOINT)
    single = train(preset("gpa-smoke"), tiny_data[0], out_dir=None, progress=False)
    assert ddp["step"] == single.steps_done
    # Same global batches, gradients averaged over the two halves: the same model up to rounding.
    # (Weights are compared through their outputs: Adam turns the rounding noise of gradients that
    # are zero in exact arithmetic, such as conv biases before GroupNorm, into full-size steps.)
    twin = build_model(preset("gpa-smoke").model)
    twin.load_state_dict(ddp["model"])
    twin.eval()
    batch = tiny_data[1].batch(torch.arange(8))
    with torch.no_grad():
        torch.testing.assert_close(
            predict(twin, batch), predict(single.model, batch), atol=1e-4, rtol=1e-4
        )
    report = json.loads((out / "metrics.json").read_text())
    assert report["steps"] == single.steps_done


def _write_deepfashion(root: Path) -> None:
    """A tiny Pose-Transfer layout (both splits, three 64x44 images each, two pairs)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        rows = []
        for shift, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
            pixels = rng.integers(0, 256, size=(64, 44, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / name)
            ys = [8 + 2 * k + shift for k in range(18)]
            xs = [6 + k + shift for k in range(18)]
            rows.append(f"{name}: {ys}: {xs}")
        (root / f"fasion-resize-annotation-{split}.csv").write_text(
            "\n".join(["name:keypoints_y:keypoints_x", *rows]) + "\n"
        )
        (root / f"fasion-resize-pairs-{split}.csv").write_text(
            "from,to\na.jpg,c.jpg\nb.jpg,a.jpg\n"
        )


def test_cli_trains_on_deepfashion_at_256_by_176(tmp_path):
    root, out = tmp_path / "deepfashion", tmp_path / "run"
    _write_deepfashion(root)
    argv = ["--preset", "gpa-smoke", "--out", str(out), "--steps", "1", "--batch-size", "2",
            "--deepfashion", str(root), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["config"]["data"] == "deepfashion" and report["test"]["ssim"]["n"] == 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "deepfashion-test-n2.pt",
        "deepfashion-train-n2.pt",
    ]


def test_gpu_preset_trains_at_256_pixels_on_cpu():
    """The paper-scale preset, one step on CPU: every scale and GPA layer runs at 256x256.

    This checks shapes, the padding and the backend choice off the GPU; it says nothing of GPU speed.
    """
    config = preset("gpa-gpu").replace(
        n_train=1, n_val=1, n_test=1, batch_size=1, steps=1, warmup_steps=1, eval_every=0,
        checkpoint_every=0, num_threads=2, device="cpu",
    )  # fmt: skip
    assert config.size == 256 and config.model.attention[:4] == ("gpa",) * 4
    train_data, test_data = load_data(config)
    result = train(config, train_data, test_data, progress=False)
    assert result.steps_done == 1 and np.isfinite(result.history["loss"][0])
    out = predict(result.model, test_data.batch(torch.tensor([0])))
    assert out.shape == (1, 3, 256, 256) and out.abs().max() <= 1

"""SyntheticPoses: layout of items, determinism, keypoints and heatmaps, textures that follow limbs."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gpa_lib.pose.data.body import TOP, Pose, Texture
from gpa_lib.pose.data.keypoints import (
    KEYPOINT_INDEX,
    KEYPOINT_NAMES,
    LIMBS,
    N_KEYPOINTS,
    keypoint_heatmaps,
    parse_size,
    skeleton_mask,
)
from gpa_lib.pose.data.pair import PAIR_KEYS
from gpa_lib.pose.data.parts import body_parts
from gpa_lib.pose.data.sampling import sample_person, sample_pose
from gpa_lib.pose.data.synthetic import SyntheticPoses, render_view


def assert_items_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_keypoint_order_is_openpose_coco():
    assert N_KEYPOINTS == 18
    assert KEYPOINT_NAMES[:5] == ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist")
    assert KEYPOINT_NAMES[14:] == ("right_eye", "left_eye", "right_ear", "left_ear")
    assert all(0 <= i < 18 and 0 <= j < 18 for i, j in LIMBS)


@pytest.mark.parametrize("size", [64, (80, 56), 128, 256])
def test_item_layout(size):
    ds = SyntheticPoses(2, size=size, seed=0)
    height, width = parse_size(size)
    item = ds[1]
    assert set(item) == set(PAIR_KEYS)  # pinned key by key in tests/test_pose_pair.py
    for prefix in ("source", "target"):
        image = item[prefix]
        assert image.shape == (3, height, width) and image.dtype == torch.float32
        assert image.min() >= -1 and image.max() <= 1
        assert item[f"{prefix}_pose"].shape == (18, height, width)
        assert item[f"{prefix}_pose"].min() >= 0 and item[f"{prefix}_pose"].max() <= 1
        assert item[f"{prefix}_keypoints"].shape == (18, 2)
        assert item[f"{prefix}_keypoints"].dtype == torch.float32
        mask = item[f"{prefix}_mask"]
        assert mask.shape == (1, height, width)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        # A person fills part of the frame, not none and not all of it.
        assert 0.03 < mask.mean() < 0.5
        # Inside the mask the image differs from the plain background in the corner.
        background = image[:, :1, :1]
        assert ((image - background).abs().sum(0) > 0.05)[mask[0] > 0].float().mean() > 0.8


def test_deterministic_per_seed_and_index():
    ds = SyntheticPoses(6, size=64, seed=7)
    forward = [ds[i] for i in range(6)]
    backward = [ds[i] for i in reversed(range(6))][::-1]
    again = SyntheticPoses(6, size=64, seed=7)
    for a, b in zip(forward, backward, strict=True):
        assert_items_equal(a, b)
    assert_items_equal(forward[4], again[4])
    assert_items_equal(forward[-1], ds[-1])
    # The first items of a longer dataset are the same pairs.
    assert_items_equal(forward[2], SyntheticPoses(50, size=64, seed=7)[2])


def test_same_items_through_dataloader_workers():
    ds = SyntheticPoses(4, size=64, seed=3)
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    batches = list(loader)
    assert batches[0]["source"].shape == (2, 3, 64, 64)
    assert batches[0]["target_pose"].shape == (2, 18, 64, 64)
    for index in range(4):
        batch, row = divmod(index, 2)
        for key in PAIR_KEYS:
            assert torch.equal(batches[batch][key][row], ds[index][key]), key


def test_different_seeds_and_indices_differ():
    a, b = SyntheticPoses(2, size=64, seed=0), SyntheticPoses(2, size=64, seed=1)
    assert not torch.equal(a[0]["source"], b[0]["source"])
    assert not torch.equal(a[0]["source"], a[1]["source"])
    # The two images of a pair show different poses.
    item = a[0]
    assert not torch.equal(item["source_keypoints"], item["target_keypoints"])
    assert (item["source"] - item["target"]).abs().mean() > 0.01


def test_sizes_render_the_same_scene():
    """Item i at 128 px, averaged down to 64 px, is item i rendered at 64 px (up to antialiasing)."""
    small, large = SyntheticPoses(3, size=64, seed=2), SyntheticPoses(3, size=128, seed=2)
    for index in range(3):
        a, b = small[index], large[index]
        pooled = torch.nn.functional.avg_pool2d(b["target"][None], 2)[0]
        assert (pooled - a["target"]).abs().mean() < 0.04
        present = a["target_keypoints"][:, 0] >= 0
        both = present & (b["target_keypoints"][:, 0] >= 0)
        # Pixel centres: y_128 = 2 * (y_64 + 0.5) - 0.5.
        expected = 2 * (a["target_keypoints"][both] + 0.5) - 0.5
        assert torch.allclose(b["target_keypoints"][both], expected, atol=1e-3)


def test_heatmaps_peak_at_keypoints_and_vanish_when_missing():
    ds = SyntheticPoses(40, size=64, seed=0)
    seen_missing = False
    for index in range(40):
        item = ds[index]
        for prefix in ("source", "target"):
            keypoints, maps = item[f"{prefix}_keypoints"], item[f"{prefix}_pose"]
            for k in range(18):
                y, x = keypoints[k].tolist()
                if y < 0:
                    assert x == -1 and y == -1
                    assert maps[k].abs().max() == 0
                    seen_missing = True
                else:
                    peak = divmod(int(maps[k].argmax()), 64)
                    assert peak == (round(y), round(x))
                    assert maps[k].max() > 0.8
        if seen_missing and index > 10:
            break
    assert seen_missing, "back views hide the face, so some keypoints must be missing"


def test_keypoint_heatmaps_function():
    keypoints = torch.full((18, 2), -1.0)
    keypoints[3] = torch.tensor([10.0, 20.0])
    maps = keypoint_heatmaps(keypoints, (32, 48), sigma=2.0)
    assert maps.shape == (18, 32, 48)
    assert maps[3, 10, 20] == 1.0
    assert math.isclose(float(maps[3, 12, 20]), math.exp(-4 / 8), rel_tol=1e-5)
    assert maps.sum() == maps[3].sum()
    with pytest.raises(ValueError, match="sigma"):
        keypoint_heatmaps(keypoints, 32, sigma=0)
    with pytest.raises(ValueError, match="keypoints"):
        keypoint_heatmaps(torch.zeros(18, 3), 32)


def test_plausible_bodies():
    """Standing people: head over neck over hips over ankles, limbs of sane length, on the frame."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        person = sample_person(rng)
        pose = sample_pose(rng)
        _, keypoints = body_parts(person, pose, (128, 128))
        kp = {name: keypoints[i] for name, i in KEYPOINT_INDEX.items()}
        for side in ("left", "right"):
            hip, knee, ankle = kp[f"{side}_hip"], kp[f"{side}_knee"], kp[f"{side}_ankle"]
            assert kp["neck"][0] < hip[0] < ankle[0]
            thigh = np.linalg.norm(hip - knee)
            assert 0.18 * 128 * 0.8 < thigh < 0.26 * 128
        assert (keypoints[:, 0] < 128).all()
        shoulders = np.linalg.norm(kp["left_shoulder"] - kp["right_shoulder"])
        torso = np.linalg.norm(kp["neck"] - 0.5 * (kp["left_hip"] + kp["right_hip"]))
        assert shoulders < torso


def test_mask_covers_the_trunk():
    ds = SyntheticPoses(5, size=64, seed=4)
    for index in range(5):
        item = ds[index]
        mask, keypoints = item["target_mask"][0], item["target_keypoints"]
        for name in ("neck", "right_hip", "left_hip"):
            y, x = keypoints[KEYPOINT_INDEX[name]].round().long().tolist()
            if y >= 0:
                assert mask[y, x] == 1, name


def _still_pose(left_arm) -> Pose:
    zero = (0.0, 0.0, 0.0, 0.0)
    return Pose(
        yaw=0.0,
        lean=0.0,
        bend=0.0,
        head_tilt=0.0,
        head_turn=0.0,
        head_nod=0.0,
        arms=(left_arm, zero),
        legs=(zero, zero),
        x_offset=0.0,
        ground=0.96,
    )


def _sample_local(image: torch.Tensor, part, s: np.ndarray, t: np.ndarray) -> torch.Tensor:
    """Colours of ``image`` (3, H, W) at local coordinates (s, t) of ``part``, nearest pixel."""
    u = (part.b - part.a) / np.linalg.norm(part.b - part.a)
    v = np.array([u[1], -u[0]])  # the renderer's `t` direction
    points = part.a[None] + s[:, None] * u[None] + t[:, None] * v[None]  # (n, 2) as (y, x)
    rows, cols = np.round(points).astype(int).T
    return image[:, rows, cols]  # (3, n)


def test_texture_moves_and_turns_with_the_limb():
    """The same spot of a sleeve shows the same colour wherever the arm goes; the image spot doesn't."""
    person = sample_person(np.random.default_rng(11))
    k = 2 * math.pi * 8  # 8 stripes per body height, diagonal in the limb's frame
    stripes = Texture(
        "stripes",
        (0.9, 0.2, 0.1),
        (0.1, 0.2, 0.9),
        ((1.0, k * math.cos(0.7), k * math.sin(0.7), 0.3),),
        threshold=0.0,
    )
    textures = list(person.textures)
    textures[TOP] = stripes
    person = replace(person, textures=tuple(textures), sleeve=2.0)
    deg = math.radians
    poses = (
        _still_pose((deg(100), 0.0, 0.0, 0.0)),
        _still_pose((deg(150), deg(10), deg(50), deg(-60))),
    )
    size = (256, 256)
    renders, parts = [], []
    for pose in poses:
        renders.append((render_view(person, pose, size).image + 1) / 2)
        parts.append({p.name: p for p in body_parts(person, pose, size)[0]})
    diffs, controls = [], []
    for name in ("left_upper_arm", "left_forearm"):
        a, b = parts[0][name], parts[1][name]
        length = np.linalg.norm(a.b - a.a)
        s, t = np.meshgrid(np.linspace(0.2, 0.8, 12) * length, np.linspace(-0.4, 0.4, 3) * a.w1)
        s, t = s.ravel(), t.ravel()
        first = _sample_local(renders[0], a, s, t)
        second = _sample_local(renders[1], b, s, t)
        # Half a stripe period further along the limb the colours swap.
        shifted = _sample_local(
            renders[1], b, s + 0.5 * 256 * person.height_frac / 8 / math.cos(0.7), t
        )
        diffs.append((first - second).abs().mean())
        controls.append((first - shifted).abs().mean())
    assert not torch.equal(renders[0], renders[1])
    assert max(diffs) < 0.12
    assert min(controls) > 3 * max(diffs)


def test_pair_shares_its_palette():
    """Target colours are source colours (same outfit); another person's colours mostly are not."""

    def palette_overlap(src, src_mask, tgt, tgt_mask) -> float:
        a = src[:, src_mask[0] > 0].T  # (n, 3)
        b = tgt[:, tgt_mask[0] > 0].T  # (m, 3)
        nearest = torch.cdist(b, a).min(dim=1).values  # (m,)
        return float((nearest < 0.15).float().mean())

    ds = SyntheticPoses(12, size=64, seed=5)
    same, other = [], []
    for index in range(0, 12, 2):
        x, y = ds[index], ds[index + 1]
        same.append(palette_overlap(x["source"], x["source_mask"], x["target"], x["target_mask"]))
        other.append(palette_overlap(x["source"], x["source_mask"], y["target"], y["target_mask"]))
    assert np.mean(same) > 0.9
    assert np.mean(same) > np.mean(other) + 0.2


def test_skeleton_mask_function():
    keypoints = torch.full((18, 2), -1.0)
    keypoints[KEYPOINT_INDEX["neck"]] = torch.tensor([10.0, 32.0])
    keypoints[KEYPOINT_INDEX["right_shoulder"]] = torch.tensor([10.0, 24.0])
    keypoints[KEYPOINT_INDEX["left_shoulder"]] = torch.tensor([10.0, 40.0])
    keypoints[KEYPOINT_INDEX["right_hip"]] = torch.tensor([40.0, 27.0])
    keypoints[KEYPOINT_INDEX["left_hip"]] = torch.tensor([40.0, 37.0])
    mask = skeleton_mask(keypoints, 64)
    assert mask.shape == (1, 64, 64)
    assert mask[0, 25, 32] == 1  # inside the torso polygon
    assert mask[0, 60, 5] == 0
    assert skeleton_mask(torch.full((18, 2), -1.0), 64).sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n=0"),
        ({"n": -3}, ValueError, "n=-3"),
        ({"n": 2.5}, TypeError, "n=2.5"),
        ({"n": True}, TypeError, "n=True"),
        ({"n": 2, "size": 0}, ValueError, "size=0"),
        ({"n": 2, "size": 16}, ValueError, "size=16"),
        ({"n": 2, "size": 5000}, ValueError, "size=5000"),
        ({"n": 2, "size": (64,)}, TypeError, "size"),
        ({"n": 2, "size": (64, 64, 3)}, TypeError, "size"),
        ({"n": 2, "size": "64"}, TypeError, "size='64'"),
        ({"n": 2, "size": 64.0}, TypeError, "size=64.0"),
        ({"n": 2, "seed": -1}, ValueError, "seed=-1"),
        ({"n": 2, "seed": 0.5}, TypeError, "seed=0.5"),
        ({"n": 2, "views": "side"}, ValueError, "views='side'"),
        ({"n": 2, "sigma": 0}, ValueError, "sigma=0"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SyntheticPoses(**kwargs)


def test_bad_index():
    ds = SyntheticPoses(3, size=64)
    with pytest.raises(IndexError, match="index=3"):
        ds[3]
    with pytest.raises(IndexError, match="index=-4"):
        ds[-4]
    with pytest.raises(TypeError, match="index"):
        ds["0"]
    assert len(ds) == 3
    assert "n=3" in repr(ds)


def test_front_views_show_faces():
    ds = SyntheticPoses(10, size=64, seed=0, views="front")
    nose = KEYPOINT_INDEX["nose"]
    for index in range(10):
        item = ds[index]
        assert item["source_keypoints"][nose, 0] >= 0
        assert item["target_keypoints"][nose, 0] >= 0


def test_plot_helpers():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gpa_lib.pose.figures.pairs import draw_keypoints, plot_pairs, pose_to_rgb, to_numpy_image

    items = [SyntheticPoses(2, size=(64, 48), seed=0)[i] for i in range(2)]
    fig = plot_pairs(items, n_cols=2, show_keypoints=True)
    assert len(fig.axes) == 4
    plt.close(fig)
    assert to_numpy_image(items[0]["source"]).shape == (64, 48, 3)
    assert pose_to_rgb(items[0]["source_pose"]).shape == (64, 48, 3)
    fig, ax = plt.subplots()
    missing = torch.full((18, 2), -1.0)
    draw_keypoints(ax, missing)  # nothing to draw is fine
    with pytest.raises(ValueError, match="keypoints"):
        draw_keypoints(ax, torch.zeros(17, 2))
    plt.close(fig)
    with pytest.raises(ValueError, match="items"):
        plot_pairs([])

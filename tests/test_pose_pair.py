"""The pair item: one layout built in one place, for both datasets and the training cache."""

from __future__ import annotations

import pytest
import torch

from gpa_lib.pose.data.cache import PairCache
from gpa_lib.pose.data.pair import (
    MODEL_INPUTS,
    PAIR_KEYS,
    PoseView,
    model_inputs,
    pair_item,
    pair_views,
)
from gpa_lib.pose.data.synthetic import SyntheticPoses

# The layout the training loop, the metrics and the figures read, written out by hand.
DOCUMENTED_KEYS = {
    "source",
    "target",
    "source_pose",
    "target_pose",
    "source_keypoints",
    "target_keypoints",
    "source_mask",
    "target_mask",
}


def _view(lead=(), height=12, width=8) -> PoseView:
    return PoseView(
        image=torch.zeros(*lead, 3, height, width),
        pose=torch.zeros(*lead, 18, height, width),
        keypoints=torch.full((*lead, 18, 2), -1.0),
        mask=torch.zeros(*lead, 1, height, width),
    )


def test_pair_keys_are_the_documented_layout():
    assert set(PAIR_KEYS) == DOCUMENTED_KEYS and len(PAIR_KEYS) == len(DOCUMENTED_KEYS)
    assert MODEL_INPUTS == ("source", "source_pose", "target_pose")


@pytest.mark.parametrize("lead", [(), (3,)])
def test_pair_views_undo_pair_item_unbatched_and_batched(lead):
    source, target = _view(lead), _view(lead)
    target = PoseView(target.image + 1, target.pose, target.keypoints, target.mask)
    item = pair_item(source, target)
    assert set(item) == DOCUMENTED_KEYS
    assert item["source"] is source.image and item["target_keypoints"] is target.keypoints
    back_source, back_target = pair_views(item)
    for field in ("image", "pose", "keypoints", "mask"):
        assert getattr(back_source, field) is getattr(source, field)
        assert getattr(back_target, field) is getattr(target, field)
    assert model_inputs(item) == (source.image, source.pose, target.pose)


def test_the_cache_batches_the_dataset_items_in_the_same_layout():
    dataset = SyntheticPoses(3, size=(40, 32), seed=5)
    batch = PairCache.build(dataset).batch(torch.arange(3))
    items = [dataset[i] for i in range(3)]
    assert set(batch) == DOCUMENTED_KEYS
    for key in PAIR_KEYS:
        stacked = torch.stack([item[key] for item in items])
        assert batch[key].shape == stacked.shape and batch[key].dtype == torch.float32, key
        # Images are cached as uint8: within half a step of 2/255.
        atol = 1 / 255 + 1e-6 if key in ("source", "target") else 1e-5
        torch.testing.assert_close(batch[key], stacked, atol=atol, rtol=0, msg=key)


@pytest.mark.parametrize(
    ("field", "shape"),
    [("pose", (17, 12, 8)), ("keypoints", (18, 3)), ("mask", (1, 12, 9)), ("mask", (2, 1, 12, 8))],
)
def test_a_view_with_a_mismatched_field_is_refused_naming_it(field, shape):
    tensors = {name: getattr(_view(), name) for name in ("image", "pose", "keypoints", "mask")}
    tensors[field] = torch.zeros(shape)
    with pytest.raises(ValueError, match=rf"^{field} must have shape"):
        PoseView(**tensors)


def test_a_view_needs_an_rgb_image():
    view = _view()
    with pytest.raises(ValueError, match=r"image must have shape \(\.\.\., 3, H, W\)"):
        PoseView(torch.zeros(1, 12, 8), view.pose, view.keypoints, view.mask)


def test_pair_views_names_the_missing_keys():
    item = pair_item(_view(), _view())
    del item["target_mask"]
    with pytest.raises(ValueError, match="target_mask"):
        pair_views(item)

"""DeepFashionPairs on a tiny Pose-Transfer layout written by the tests: parsing, items, and every error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gpa_lib.pose.data.deepfashion import DeepFashionPairs, read_annotations, scale_keypoints
from gpa_lib.pose.data.synthetic import SyntheticPoses

HEIGHT, WIDTH = 64, 44  # a small image of DeepFashion's 256x176 aspect


def _keypoints(shift: int) -> tuple[list[int], list[int]]:
    ys = [8 + 2 * k + shift for k in range(18)]
    xs = [6 + k + shift for k in range(18)]
    return ys, xs


def _row(name: str, ys, xs) -> str:
    # The real files put a space after each ':'; the parser must not care.
    return f"{name}: {list(ys)}: {list(xs)}"


def _write_layout(root, split="test", *, rows=None, pairs=None, images=("a.jpg", "b.jpg", "c.png")):
    """A tiny Pose-Transfer layout: three images, their annotations and two pairs."""
    image_dir = root / split
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pixels = {}
    for name in images:
        array = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(array).save(image_dir / name)
        pixels[name] = array
    if rows is None:
        ys_c, xs_c = _keypoints(2)
        ys_c[0] = xs_c[0] = -1  # nose missing
        xs_c[17] = -1  # left ear: only x missing still means missing
        rows = [
            _row("a.jpg", *_keypoints(0)),
            _row("b.jpg", *_keypoints(1)),
            _row("c.png", ys_c, xs_c),
        ]
    if pairs is None:
        pairs = ["a.jpg,c.png", "b.jpg,a.jpg"]
    (root / f"fasion-resize-annotation-{split}.csv").write_text(
        "\n".join(["name:keypoints_y:keypoints_x", *rows]) + "\n"
    )
    (root / f"fasion-resize-pairs-{split}.csv").write_text("\n".join(["from,to", *pairs]) + "\n")
    return pixels


def test_items_match_the_synthetic_layout(tmp_path):
    _write_layout(tmp_path)
    ds = DeepFashionPairs(tmp_path, split="test", size=(HEIGHT, WIDTH))
    assert len(ds) == 2
    assert ds.pairs == [("a.jpg", "c.png"), ("b.jpg", "a.jpg")]
    item = ds[0]
    synthetic = SyntheticPoses(1, size=(HEIGHT, WIDTH))[0]
    assert item.keys() == synthetic.keys()
    for key, value in item.items():
        assert value.shape == synthetic[key].shape, key
        assert value.dtype == torch.float32, key
    assert item["source"].min() >= -1 and item["source"].max() <= 1
    assert set(item["target_mask"].unique().tolist()) <= {0.0, 1.0}
    assert item["target_mask"].sum() > 0


def test_pixels_and_keypoints_are_read_exactly(tmp_path):
    pixels = _write_layout(tmp_path)
    item = DeepFashionPairs(tmp_path, size=(HEIGHT, WIDTH))[0]
    expected = (
        torch.from_numpy(pixels["c.png"]).permute(2, 0, 1).float() / 127.5 - 1
    )  # PNG: lossless
    assert torch.allclose(item["target"], expected)
    ys, xs = _keypoints(0)
    assert item["source_keypoints"].tolist() == [
        [float(y), float(x)] for y, x in zip(ys, xs, strict=True)
    ]
    target = item["target_keypoints"]
    assert target[0].tolist() == [-1.0, -1.0]
    assert target[17].tolist() == [-1.0, -1.0]
    assert target[1].tolist() == [12.0, 9.0]


def test_heatmaps_peak_at_keypoints_and_vanish_when_missing(tmp_path):
    _write_layout(tmp_path)
    item = DeepFashionPairs(tmp_path, size=(HEIGHT, WIDTH), sigma=1.5)[0]
    maps, keypoints = item["target_pose"], item["target_keypoints"]
    for k in range(18):
        if keypoints[k, 0] < 0:
            assert maps[k].max() == 0
        else:
            assert divmod(int(maps[k].argmax()), WIDTH) == tuple(int(v) for v in keypoints[k])
            assert maps[k].max() == 1


def test_resizing_scales_keypoints(tmp_path):
    _write_layout(tmp_path)
    item = DeepFashionPairs(tmp_path, size=(2 * HEIGHT, 2 * WIDTH))[1]
    assert item["source"].shape == (3, 2 * HEIGHT, 2 * WIDTH)
    ys, xs = _keypoints(1)
    assert item["source_keypoints"][5].tolist() == [2 * ys[5] + 0.5, 2 * xs[5] + 0.5]
    kp = torch.tensor([[10.0, 4.0], [-1.0, -1.0]])
    assert scale_keypoints(kp, (64, 44), (64, 44)).tolist() == kp.tolist()


def test_train_split_and_square_size(tmp_path):
    _write_layout(tmp_path, split="train")
    ds = DeepFashionPairs(tmp_path, split="train", size=48)
    assert ds[0]["source"].shape == (3, 48, 48)
    with pytest.raises(FileNotFoundError, match="split='test'"):
        DeepFashionPairs(tmp_path, split="test")


BAD_ROWS = [
    ("a.jpg: [1, 2, 3]: [1, 2, 3]", "keypoints_y must be a list of 18"),
    ("a.jpg: [1, 2]", "expected 3 ':'-separated fields"),
    ("a.jpg: [1]: [2]: [3]", "expected 3 ':'-separated fields"),
    (_row("a.jpg", [1] * 17 + ["x"], [1] * 18), "keypoints_y must be a list of 18"),
    (_row("a.jpg", [1] * 18, [1] * 17 + [2.5]), "keypoints_x holds 2.5"),
    (_row("a.jpg", [1] * 18, [1] * 17 + [-3]), "keypoints_x holds -3"),
    (_row("", [1] * 18, [1] * 18), "name is empty"),
]


@pytest.mark.parametrize(("bad_row", "match"), BAD_ROWS)
def test_malformed_annotation_row_names_file_and_line(tmp_path, bad_row, match):
    rows = [_row("b.jpg", *_keypoints(1)), _row("c.png", *_keypoints(2)), bad_row]
    _write_layout(tmp_path, rows=rows)
    with pytest.raises(ValueError, match=rf"fasion-resize-annotation-test\.csv:4: .*{match}"):
        DeepFashionPairs(tmp_path, size=(HEIGHT, WIDTH))


def test_duplicate_annotation(tmp_path):
    rows = [
        _row("a.jpg", *_keypoints(0)),
        _row("b.jpg", *_keypoints(1)),
        _row("a.jpg", *_keypoints(2)),
    ]
    _write_layout(tmp_path, rows=rows, images=("a.jpg", "b.jpg"), pairs=["a.jpg,b.jpg"])
    with pytest.raises(ValueError, match=r"annotation-test\.csv:4: 'a.jpg' is annotated twice"):
        DeepFashionPairs(tmp_path)


def test_missing_image_names_file_and_line(tmp_path):
    _write_layout(tmp_path)
    (tmp_path / "test" / "b.jpg").unlink()
    with pytest.raises(ValueError, match=r"annotation-test\.csv:3: image 'b.jpg' is missing"):
        DeepFashionPairs(tmp_path)


def test_pair_naming_an_unknown_image(tmp_path):
    _write_layout(tmp_path, pairs=["a.jpg,c.png", "a.jpg,nobody.jpg"])
    with pytest.raises(ValueError, match=r"pairs-test\.csv:3: image 'nobody.jpg' has no row"):
        DeepFashionPairs(tmp_path)


@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        (["a.jpg;c.png"], r"pairs-test\.csv:2: expected 'from,to'"),
        (["a.jpg,"], r"pairs-test\.csv:2:"),
        ([], r"pairs-test\.csv: holds no pairs"),
    ],
)
def test_malformed_pairs(tmp_path, pairs, match):
    _write_layout(tmp_path, pairs=pairs)
    with pytest.raises(ValueError, match=match):
        DeepFashionPairs(tmp_path)


def test_bad_headers(tmp_path):
    _write_layout(tmp_path)
    path = tmp_path / "fasion-resize-pairs-test.csv"
    path.write_text("source,target\na.jpg,b.jpg\n")
    with pytest.raises(ValueError, match=r"pairs-test\.csv:1: expected the header 'from,to'"):
        DeepFashionPairs(tmp_path)
    path = tmp_path / "fasion-resize-annotation-test.csv"
    path.write_text("name,keypoints_y,keypoints_x\n")
    with pytest.raises(ValueError, match=r"annotation-test\.csv:1: expected the header"):
        read_annotations(path)


def test_keypoint_outside_the_image_is_an_error_when_read(tmp_path):
    ys, xs = _keypoints(0)
    ys[4] = HEIGHT + 3
    rows = [_row("a.jpg", ys, xs), _row("b.jpg", *_keypoints(1))]
    _write_layout(tmp_path, rows=rows, images=("a.jpg", "b.jpg"), pairs=["a.jpg,b.jpg"])
    ds = DeepFashionPairs(tmp_path, size=(HEIGHT, WIDTH))
    with pytest.raises(
        ValueError, match=r"annotation-test\.csv:2: keypoint 4 .* lies outside 'a.jpg'"
    ):
        ds[0]


def test_bad_arguments(tmp_path):
    _write_layout(tmp_path)
    with pytest.raises(ValueError, match="split='val'"):
        DeepFashionPairs(tmp_path, split="val")
    with pytest.raises(FileNotFoundError, match="root="):
        DeepFashionPairs(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="size=8"):
        DeepFashionPairs(tmp_path, size=8)
    with pytest.raises(TypeError, match="size="):
        DeepFashionPairs(tmp_path, size=(64, 44, 3))
    with pytest.raises(ValueError, match="sigma=-1"):
        DeepFashionPairs(tmp_path, sigma=-1)
    (tmp_path / "fasion-resize-pairs-test.csv").unlink()
    with pytest.raises(FileNotFoundError, match="fasion-resize-pairs-test.csv"):
        DeepFashionPairs(tmp_path)
    _write_layout(tmp_path)
    ds = DeepFashionPairs(tmp_path, size=(HEIGHT, WIDTH))
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(TypeError, match="index"):
        ds["a.jpg"]


# --- hostile files (issue 17): each is one ValueError naming the file (and line where there is one)


def test_an_empty_annotation_file(tmp_path):
    _write_layout(tmp_path)
    (tmp_path / "fasion-resize-annotation-test.csv").write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"annotation-test\.csv:1: expected the header .* found .an empty file."
    ):
        DeepFashionPairs(tmp_path)


def test_a_row_cut_in_the_middle(tmp_path):
    rows = [_row("a.jpg", *_keypoints(0)), _row("b.jpg", *_keypoints(1)), "c.png: [1, 2, 3"]
    _write_layout(tmp_path, rows=rows)
    with pytest.raises(
        ValueError, match=r"annotation-test\.csv:4: expected 3 ':'-separated fields"
    ):
        DeepFashionPairs(tmp_path)


def test_a_wrong_delimiter_in_the_annotations(tmp_path):
    _write_layout(tmp_path)
    path = tmp_path / "fasion-resize-annotation-test.csv"
    path.write_text(path.read_text().replace(":", ";"))
    with pytest.raises(ValueError, match=r"annotation-test\.csv:1: expected the header"):
        DeepFashionPairs(tmp_path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    _write_layout(tmp_path)
    for name in ("fasion-resize-annotation-test.csv", "fasion-resize-pairs-test.csv"):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(DeepFashionPairs(tmp_path, size=(HEIGHT, WIDTH))) == 2


def test_bytes_that_are_not_utf8(tmp_path):
    _write_layout(tmp_path)
    path = tmp_path / "fasion-resize-pairs-test.csv"
    path.write_bytes(b"from,to\na.jpg,c.png\nb\xff.jpg,a.jpg\n")
    with pytest.raises(ValueError, match=r"pairs-test\.csv:3: not UTF-8 text \(byte 21"):
        DeepFashionPairs(tmp_path)


def test_a_duplicated_header(tmp_path):
    _write_layout(tmp_path, pairs=["from,to", "a.jpg,c.png"])
    with pytest.raises(ValueError, match=r"pairs-test\.csv:2: image 'from' has no row"):
        DeepFashionPairs(tmp_path)


@pytest.mark.parametrize(
    "content", [b"", b"\xff\xd8\xff\xe0 not really a jpeg"], ids=["empty", "corrupt"]
)
def test_an_empty_or_corrupt_image_is_named_when_read(tmp_path, content):
    _write_layout(tmp_path)
    (tmp_path / "test" / "c.png").write_bytes(content)
    ds = DeepFashionPairs(tmp_path, size=(HEIGHT, WIDTH))
    with pytest.raises(ValueError, match=r"c\.png: cannot be read as an image"):
        ds[0]  # a.jpg -> c.png

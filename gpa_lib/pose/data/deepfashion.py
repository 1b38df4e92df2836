"""DeepFashionPairs: the DeepFashion In-shop pose-transfer pairs in the Pose-Transfer layout.

The layout PATN, GFLA and the GPA authors use (https://github.com/tengteng95/Pose-Transfer)::

    root/fasion-resize-annotation-{split}.csv   name:keypoints_y:keypoints_x
                                                img.jpg: [18 y]: [18 x]      (-1 for a missing point)
    root/fasion-resize-pairs-{split}.csv        from,to
                                                a.jpg,b.jpg
    root/{split}/img.jpg                        the images, 256x176 in the "resize" release

The files are checked when the dataset is built: a malformed or cut-off row, a file that is not UTF-8,
a wrong delimiter or header, an image that is not on disk, a pair naming an image that has no
annotation, a duplicate name, all raise a ``ValueError`` naming the file and line; an image file
that is empty or corrupt raises one naming the image when it is read. A UTF-8 byte-order mark before
the header is accepted. Nothing is skipped silently. See ``data/deepfashion.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gpa_lib.pose.data.keypoints import N_KEYPOINTS, keypoint_heatmaps, parse_size, skeleton_mask
from gpa_lib.pose.data.pair import PoseView, pair_item

SPLITS = ("train", "test")
ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"
PAIRS_HEADER = "from,to"


def annotation_path(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / f"fasion-resize-annotation-{split}.csv"


def pairs_path(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / f"fasion-resize-pairs-{split}.csv"


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the Pose-Transfer layout needs it (see data/deepfashion.md)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte {err.start}: {err.reason})"
        ) from None
    return text.splitlines()


def _check_header(path: Path, lines: list[str], expected: str) -> None:
    if not lines or lines[0].replace(" ", "").lstrip("\ufeff") != expected:
        found = lines[0] if lines else "an empty file"
        raise ValueError(f"{path}:1: expected the header {expected!r}, found {found!r}")


def _parse_coordinates(path: Path, lineno: int, field: str, what: str) -> list[int]:
    try:
        values = json.loads(field)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, list) or len(values) != N_KEYPOINTS:
        raise ValueError(
            f"{path}:{lineno}: {what} must be a list of {N_KEYPOINTS} integers, found {field.strip()!r}"
        )
    for value in values:
        # Accept 12 and 12.0 (some re-exports write floats); reject 12.5, strings and booleans.
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"{path}:{lineno}: {what} holds {value!r}, not an integer")
        if value < -1:
            raise ValueError(
                f"{path}:{lineno}: {what} holds {value!r}; coordinates are >= 0, or -1 when missing"
            )
    return [int(v) for v in values]


def read_annotations(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, int]]:
    """Keypoints per image from a ``fasion-resize-annotation-*.csv``: name -> ((18, 2) as (y, x), line).

    A point with either coordinate -1 is missing and becomes (-1, -1). Blank lines are ignored;
    every other line must parse.
    """
    path = Path(path)
    lines = _read_lines(path)
    _check_header(path, lines, ANNOTATION_HEADER)
    annotations: dict[str, tuple[np.ndarray, int]] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(":")
        if len(fields) != 3:
            raise ValueError(
                f"{path}:{lineno}: expected 3 ':'-separated fields (name:[18 y]:[18 x]), found {len(fields)}"
            )
        name = fields[0].strip()
        if not name:
            raise ValueError(f"{path}:{lineno}: the image name is empty")
        if name in annotations:
            raise ValueError(
                f"{path}:{lineno}: {name!r} is annotated twice (first on line {annotations[name][1]})"
            )
        ys = _parse_coordinates(path, lineno, fields[1], "keypoints_y")
        xs = _parse_coordinates(path, lineno, fields[2], "keypoints_x")
        keypoints = np.stack([ys, xs], axis=1).astype(np.float32)  # (18, 2)
        keypoints[(keypoints < 0).any(axis=1)] = -1
        annotations[name] = (keypoints, lineno)
    return annotations


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str, int]]:
    """(from, to, line) for every row of a ``fasion-resize-pairs-*.csv``; blank lines are ignored."""
    path = Path(path)
    lines = _read_lines(path)
    _check_header(path, lines, PAIRS_HEADER)
    pairs = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2 or not all(fields):
            raise ValueError(
                f"{path}:{lineno}: expected 'from,to' (two image names), found {line!r}"
            )
        pairs.append((fields[0], fields[1], lineno))
    if not pairs:
        raise ValueError(f"{path}: holds no pairs")
    return pairs


def load_image(
    path: str | os.PathLike, size: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]]:
    """An RGB image as ``(3, H, W)`` floats in [-1, 1], resized (bilinear) to ``size`` (H, W) pixels.

    Also returns the size ``(H, W)`` of the file on disk, to scale its keypoints.
    """
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - PIL ships with matplotlib
        raise ImportError("reading DeepFashion images needs Pillow: pip install pillow") from err
    try:
        with Image.open(path) as handle:
            image = handle.convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's errors for empty or corrupt files
        raise ValueError(
            f"{path}: cannot be read as an image ({type(err).__name__}: {err})"
        ) from None
    original = (image.height, image.width)
    if original != size:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())  # (H, W, 3)
    return array.permute(2, 0, 1).to(torch.float32) / 127.5 - 1, original


def scale_keypoints(
    keypoints: torch.Tensor, original: Sequence[int], size: Sequence[int]
) -> torch.Tensor:
    """Keypoints ``(18, 2)`` (y, x pixels) of an ``original`` (H, W) image moved to a resized ``size``.

    Pixel centres map to pixel centres, ``y' = (y + 0.5) * H' / H - 0.5``; missing points stay -1.
    """
    factor = torch.tensor([size[0] / original[0], size[1] / original[1]], dtype=torch.float32)
    scaled = (keypoints + 0.5) * factor - 0.5
    return torch.where(
        (keypoints >= 0).all(dim=1, keepdim=True), scaled, torch.full_like(keypoints, -1.0)
    )


class DeepFashionPairs(Dataset):
    """DeepFashion pose-transfer pairs read from the Pose-Transfer layout (see the module docstring).

    Args:
        root: folder holding the two CSV files and the ``{split}/`` image folder.
        split: ``"train"`` or ``"test"``.
        size: output ``(H, W)`` in pixels, or an int for square; images of another size are resized
            bilinearly and their keypoints scaled. (256, 176) is the size of the released images.
        sigma: heatmap width in pixels; default 6 px per 256 image rows, as PATN and GFLA use.

    Items are pair items (:mod:`gpa_lib.pose.data.pair`), as
    :class:`~gpa_lib.pose.data.synthetic.SyntheticPoses` returns:
    ``source``, ``target`` (3, H, W) in [-1, 1]; ``source_pose``, ``target_pose`` (18, H, W);
    ``source_keypoints``, ``target_keypoints`` (18, 2) as (y, x), -1 missing; ``source_mask``,
    ``target_mask`` (1, H, W). DeepFashion has no segmentation, so the masks are an approximation:
    :func:`gpa_lib.pose.data.keypoints.skeleton_mask`, the limbs drawn thick, the torso and a head disc.
    ``pairs[i]`` gives the (from, to) image names of item ``i``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "test",
        size: int | Sequence[int] = (256, 176),
        *,
        sigma: float | None = None,
    ):
        if split not in SPLITS:
            raise ValueError(f"split={split!r} must be one of {SPLITS}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"root={str(root)!r} is not a folder")
        self.split = split
        self.size = parse_size(size)
        if sigma is not None and not (isinstance(sigma, int | float) and sigma > 0):
            raise ValueError(f"sigma={sigma!r} must be a positive number of pixels or None")
        self.sigma = sigma
        self.image_dir = self.root / split
        if not self.image_dir.is_dir():
            raise FileNotFoundError(
                f"image folder {self.image_dir} not found (root={str(root)!r}, split={split!r})"
            )

        ann_path, pair_path = annotation_path(root, split), pairs_path(root, split)
        self.annotations = read_annotations(ann_path)
        on_disk = set(os.listdir(self.image_dir))
        for name, (_, lineno) in self.annotations.items():
            if name not in on_disk:
                raise ValueError(
                    f"{ann_path}:{lineno}: image {name!r} is missing from {self.image_dir}"
                )
        rows = read_pairs(pair_path)
        for source, target, lineno in rows:
            for name in (source, target):
                if name not in self.annotations:
                    raise ValueError(
                        f"{pair_path}:{lineno}: image {name!r} has no row in {ann_path.name}"
                    )
        self.pairs: list[tuple[str, str]] = [(s, t) for s, t, _ in rows]
        self._annotation_file = ann_path

    def __len__(self) -> int:
        return len(self.pairs)

    def _view(self, name: str) -> PoseView:
        keypoints_np, lineno = self.annotations[name]
        image, original = load_image(self.image_dir / name, self.size)
        keypoints = torch.from_numpy(keypoints_np)
        outside = (keypoints[:, 0] >= original[0]) | (keypoints[:, 1] >= original[1])
        if outside.any():
            k = int(outside.nonzero()[0, 0])
            raise ValueError(
                f"{self._annotation_file}:{lineno}: keypoint {k} at (y, x) = {tuple(keypoints_np[k])} "
                f"lies outside {name!r}, which is {original[0]}x{original[1]}"
            )
        keypoints = scale_keypoints(keypoints, original, self.size)
        return PoseView(
            image=image,
            pose=keypoint_heatmaps(keypoints, self.size, self.sigma),
            keypoints=keypoints,
            mask=skeleton_mask(keypoints, self.size),
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"index={index!r} must be an int")
        source_name, target_name = self.pairs[index]
        return pair_item(self._view(source_name), self._view(target_name))

    def __repr__(self) -> str:
        return f"DeepFashionPairs(root={str(self.root)!r}, split={self.split!r}, size={self.size}, pairs={len(self)})"

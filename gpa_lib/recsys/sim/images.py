"""Procedural article images: the category's silhouette in the article's colour, pattern and material.

Every image is ``(H, W, 3)`` uint8 with ``H = W = size`` pixels (32 by default) on a light
background. What an encoder can learn from it: the silhouette says the category, the dominant hue
the colour, the texture the pattern (stripes, checks, dots, floral, print) and, more faintly, the
material (denim twill, knitted wool, leather sheen). Per-article jitter (pattern phase and period,
shade, second colour, pixel noise) keeps two articles with the same attributes from looking identical.

With ``SimConfig.image_share > 0`` each article also has hidden values (:data:`IMAGE_HIDDEN`) that
no attribute names and that enter its latent position: the *tone* lightens or darkens the main
colour (:func:`tone_colours`) and the *length* stretches the silhouette vertically about the
canvas centre (:func:`length_stretch`). Without them (``hidden=None``) the renderer draws exactly
what it drew before they existed.
"""

from __future__ import annotations

import numpy as np

from gpa_lib.recsys.sim.vocabulary import CATEGORIES, COLOURS, MATERIALS

# colour name (in the order of COLOURS) -> RGB
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (30, 30, 32),
    "white": (236, 236, 230),
    "grey": (128, 128, 132),
    "navy": (28, 40, 90),
    "blue": (60, 110, 200),
    "red": (200, 40, 45),
    "pink": (235, 140, 170),
    "green": (40, 140, 70),
    "olive": (110, 115, 50),
    "beige": (215, 195, 160),
    "brown": (110, 70, 40),
    "yellow": (235, 200, 50),
}
assert tuple(PALETTE) == COLOURS
BACKGROUND = 242
#: The hidden values an image shows and the attribute table does not (columns of
#: ``SimTruth.article_image_hidden``, standard normal per article).
IMAGE_HIDDEN = ("tone", "length")
TONE_RANGE = 0.5  # a tone of +-inf moves the main colour this share of the way to white / black
LENGTH_RANGE = 0.2  # a length of +-inf stretches the silhouette by exp(+-LENGTH_RANGE)


def tone_colours(colours: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """Lighter (tone > 0: towards white) or darker (tone < 0: towards black) ``colours`` (n, 3) RGB;
    ``tone`` (n,) standard normal, squashed by ``tanh(tone / 2)`` so that every tone stays a
    shade of its colour."""
    t = TONE_RANGE * np.tanh(np.asarray(tone, np.float64) / 2)[:, None]  # (n, 1)
    return np.where(t > 0, colours + t * (255.0 - colours), colours * (1.0 + t))


def length_stretch(length: np.ndarray) -> np.ndarray:
    """(n,) vertical stretch factors of the silhouette, ``exp(LENGTH_RANGE * tanh(length / 2))``:
    1 for an average article, 0.82 to 1.22 at the extremes."""
    return np.exp(LENGTH_RANGE * np.tanh(np.asarray(length, np.float64) / 2))


def _canvas(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates on a unit square: ``(y, x)`` each ``(H, W)``, 0 at top/left, 1 at bottom/right."""
    coords = (np.arange(size) + 0.5) / size
    return np.meshgrid(coords, coords, indexing="ij")


def _rect(y, x, y0, y1, x0, x1):
    return (y >= y0) & (y < y1) & (x >= x0) & (x < x1)


def _trapezoid(y, x, y0, y1, top, bottom):
    """Rows ``y0..y1``; the horizontal extent moves linearly from ``top=(x0, x1)`` to ``bottom``."""
    t = np.clip((y - y0) / (y1 - y0), 0, 1)
    x0 = top[0] + t * (bottom[0] - top[0])
    x1 = top[1] + t * (bottom[1] - top[1])
    return (y >= y0) & (y < y1) & (x >= x0) & (x < x1)


def _ellipse(y, x, cy, cx, ry, rx):
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1


def silhouette(category: str, size: int = 32, stretch: np.ndarray | None = None) -> np.ndarray:
    """The ``(H, W)`` boolean mask of ``category`` (one of :data:`CATEGORIES`); with ``stretch``
    (n,) factors, ``(n, H, W)`` masks stretched vertically about the canvas centre (> 1: longer)."""
    y, x = _canvas(size)
    if stretch is not None:
        stretch = np.asarray(stretch, np.float64)[:, None, None]  # (n, 1, 1)
        y = 0.5 + (y[None] - 0.5) / stretch  # (n, H, W): where each pixel falls on the drawing
        x = x[None]  # (1, H, W)
    return _silhouette(category, y, x)


def _silhouette(category: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    left_sleeve_long = _trapezoid(y, x, 0.2, 0.78, (0.17, 0.30), (0.10, 0.20))
    right_sleeve_long = _trapezoid(y, x, 0.2, 0.78, (0.70, 0.83), (0.80, 0.90))
    if category == "tshirt":
        body = _rect(y, x, 0.25, 0.9, 0.30, 0.70)
        sleeves = _trapezoid(y, x, 0.25, 0.45, (0.12, 0.88), (0.08, 0.92)) & ~_rect(
            y, x, 0, 1, 0.30, 0.70
        )
        return (body | sleeves) & ~_ellipse(y, x, 0.25, 0.5, 0.07, 0.1)
    if category == "shirt":
        body = _rect(y, x, 0.2, 0.92, 0.30, 0.70)
        collar = _trapezoid(y, x, 0.14, 0.22, (0.38, 0.62), (0.30, 0.70))
        return body | collar | left_sleeve_long | right_sleeve_long
    if category == "dress":
        straps = _rect(y, x, 0.08, 0.2, 0.36, 0.40) | _rect(y, x, 0.08, 0.2, 0.60, 0.64)
        return straps | _trapezoid(y, x, 0.2, 0.95, (0.34, 0.66), (0.15, 0.85))
    if category == "skirt":
        return _trapezoid(y, x, 0.3, 0.82, (0.34, 0.66), (0.18, 0.82))
    if category in ("trousers", "jeans", "shorts"):
        bottom = {"trousers": 0.95, "jeans": 0.95, "shorts": 0.58}[category]
        hem = {"trousers": (0.26, 0.74), "jeans": (0.33, 0.67), "shorts": (0.24, 0.76)}[category]
        waist = _rect(y, x, 0.1, 0.2, 0.28, 0.72)
        legs = _trapezoid(y, x, 0.2, bottom, (0.28, 0.72), hem) & ~_trapezoid(
            y, x, 0.26, 1.0, (0.48, 0.52), (0.40, 0.60)
        )
        return waist | legs
    if category in ("jacket", "coat"):
        bottom = 0.8 if category == "jacket" else 0.97
        flare = (0.28, 0.72) if category == "jacket" else (0.24, 0.76)
        body = _trapezoid(y, x, 0.18, bottom, (0.30, 0.70), flare)
        opening = _trapezoid(y, x, 0.18, bottom, (0.46, 0.54), (0.49, 0.51))
        return (body & ~opening) | left_sleeve_long | right_sleeve_long
    if category == "knitwear":
        body = _rect(y, x, 0.22, 0.86, 0.28, 0.72)
        return (body | left_sleeve_long | right_sleeve_long) & ~_ellipse(
            y, x, 0.22, 0.5, 0.06, 0.12
        )
    if category == "shoes":
        sole = _rect(y, x, 0.74, 0.82, 0.08, 0.92)
        upper = _ellipse(y, x, 0.74, 0.6, 0.2, 0.32) & (y < 0.76)
        heel = _rect(y, x, 0.5, 0.76, 0.08, 0.3)
        return sole | upper | heel
    if category == "bag":
        body = _rect(y, x, 0.38, 0.88, 0.18, 0.82)
        handle = (
            _ellipse(y, x, 0.38, 0.5, 0.26, 0.22)
            & ~_ellipse(y, x, 0.38, 0.5, 0.19, 0.15)
            & (y < 0.4)
        )
        return body | handle
    raise ValueError(f"category={category!r} is not one of {CATEGORIES}")


def pattern_masks(pattern_idx: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """``(n, H, W)`` float in [0, 1]: where the second colour shows, per article.

    ``pattern_idx`` (n,) indexes :data:`PATTERNS`; phases, periods and motif positions are drawn
    from ``rng`` per article, so the texture is the pattern's, not a fixed stamp.
    """
    n = len(pattern_idx)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")  # (H, W) in pixels
    yy, xx = yy[None], xx[None]  # (1, H, W)
    period = rng.integers(3, 6, size=(n, 1, 1))
    phase_y, phase_x = rng.integers(0, 6, size=(2, n, 1, 1))
    vertical = rng.random((n, 1, 1)) < 0.3
    stripes = (((np.where(vertical, xx, yy) + phase_y) // np.maximum(period // 2, 1)) % 2).astype(
        np.float32
    )
    checks = ((((yy + phase_y) // period) + ((xx + phase_x) // period)) % 2).astype(np.float32)
    dot_period = period + 2
    dy = (yy + phase_y) % dot_period - dot_period / 2
    dx = (xx + phase_x) % dot_period - dot_period / 2
    dots = (dy**2 + dx**2 < (dot_period / 3.2) ** 2).astype(np.float32)
    n_blobs = 6
    centres = rng.random((n, n_blobs, 2)) * size  # (n, K, 2) in pixels
    radius = (1.6 + 1.4 * rng.random((n, n_blobs)))[..., None, None]  # (n, K, 1, 1)
    blob_dist = (yy[:, None] - centres[..., 0, None, None]) ** 2 + (
        xx[:, None] - centres[..., 1, None, None]
    ) ** 2
    floral = (blob_dist < radius**2).any(axis=1).astype(np.float32)  # (n, H, W)
    motif_r = size * (0.12 + 0.06 * rng.random((n, 1, 1)))
    motif_square = rng.random((n, 1, 1)) < 0.5
    cy, cx = yy - size * 0.52, xx - size * 0.5
    motif = np.where(
        motif_square, np.maximum(np.abs(cy), np.abs(cx)) < motif_r * 0.8, cy**2 + cx**2 < motif_r**2
    )
    stack = np.stack(
        [
            np.zeros((n, size, size), np.float32),
            stripes,
            checks,
            dots,
            floral,
            motif.astype(np.float32),
        ]
    )  # (P, n, H, W)
    return stack[pattern_idx, np.arange(n)]


def render_articles(
    category_idx: np.ndarray,
    colour_idx: np.ndarray,
    pattern_idx: np.ndarray,
    material_idx: np.ndarray,
    rng: np.random.Generator,
    size: int = 32,
    chunk: int = 512,
    hidden: np.ndarray | None = None,
) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 images; the index arrays (n,) point into :data:`CATEGORIES`,
    :data:`COLOURS` (colours as in :data:`PALETTE`), :data:`PATTERNS` and :data:`MATERIALS`;
    ``hidden`` (n, K), when given, holds the values of :data:`IMAGE_HIDDEN` (tone, length) that the
    images show and the attributes do not. ``rng`` is drawn from the same way with or without them.

    Rendered ``chunk`` articles at a time to bound memory; the result depends on ``rng`` and
    ``chunk``, so keep ``chunk`` fixed for reproducible images.
    """
    n = len(category_idx)
    if hidden is not None and np.shape(hidden) != (n, len(IMAGE_HIDDEN)):
        raise ValueError(
            f"hidden has shape {np.shape(hidden)}; expected (n_articles={n}, {len(IMAGE_HIDDEN)}) "
            f"for {IMAGE_HIDDEN}"
        )
    parts = [
        _render_chunk(
            category_idx[i : i + chunk],
            colour_idx[i : i + chunk],
            pattern_idx[i : i + chunk],
            material_idx[i : i + chunk],
            rng,
            size,
            None if hidden is None else hidden[i : i + chunk],
        )
        for i in range(0, n, chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.uint8)


def _category_masks(category_idx: np.ndarray, size: int, stretch: np.ndarray) -> np.ndarray:
    """(n, H, W) silhouettes of the articles, each stretched by its own factor (n,)."""
    masks = np.zeros((len(category_idx), size, size), dtype=bool)
    for k, category in enumerate(CATEGORIES):
        rows = np.flatnonzero(category_idx == k)
        if len(rows):
            masks[rows] = silhouette(category, size, stretch=stretch[rows])
    return masks


def _render_chunk(category_idx, colour_idx, pattern_idx, material_idx, rng, size, hidden=None):
    n = len(category_idx)
    if hidden is None:
        masks = np.stack([silhouette(c, size) for c in CATEGORIES])[category_idx]  # (n, H, W)
    else:
        length = hidden[:, IMAGE_HIDDEN.index("length")]
        masks = _category_masks(category_idx, size, length_stretch(length))  # (n, H, W)
    palette = np.array(list(PALETTE.values()), dtype=np.float32)  # (n_colours, 3)
    main = palette[colour_idx] + rng.normal(0, 8, size=(n, 3))  # (n, 3) shade jitter
    if hidden is not None:
        tone = hidden[:, IMAGE_HIDDEN.index("tone")]
        main = tone_colours(main, tone)  # (n, 3) lighter or darker, as the article's tone
    offset = rng.integers(1, len(palette), size=n)
    second_idx = (colour_idx + offset) % len(palette)  # never the main colour
    second = palette[second_idx]
    pattern = pattern_masks(pattern_idx, rng, size)[..., None]  # (n, H, W, 1)
    cloth = main[:, None, None] * (1 - pattern) + second[:, None, None] * pattern  # (n, H, W, 3)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    material = np.asarray(MATERIALS)[material_idx]
    twill = (((yy + xx) % 3 == 0) * -18.0)[None]  # denim: diagonal weave
    knit = ((xx % 2 == 0) * -12.0)[None]  # wool: vertical knit ribs
    sheen = (40.0 * np.exp(-(((xx - size * 0.35) / (size * 0.12)) ** 2)))[
        None
    ]  # leather: a highlight band
    texture = (
        np.where((material == "denim")[:, None, None], twill, 0.0)
        + np.where((material == "wool")[:, None, None], knit, 0.0)
        + np.where((material == "leather")[:, None, None], sheen, 0.0)
    )  # (n, H, W)
    shading = 1.0 - 0.15 * (yy / size)[None]  # light from above, (1, H, W)
    cloth = cloth * shading[..., None] + texture[..., None]
    image = np.where(masks[..., None], cloth, float(BACKGROUND))
    image = image + rng.normal(0, 3, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)

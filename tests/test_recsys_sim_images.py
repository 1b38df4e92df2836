"""The part of an article latent only its image shows (``SimConfig.image_share``).

With the default ``image_share=0`` every store is the store of before, bit for bit (digests taken
from the code before the knob existed); with ``image_share > 0`` the images show hidden values
(tone, length) that no attribute names, and those values move the latent.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from gpa_lib.recsys.data import ARTICLE_ATTRIBUTES
from gpa_lib.recsys.eval.analysis import heldout_r2
from gpa_lib.recsys.sim import SimConfig, simulate, simulate_preset
from gpa_lib.recsys.sim.images import IMAGE_HIDDEN, render_articles
from gpa_lib.recsys.sim.vocabulary import CATEGORIES, COLOURS, MATERIALS, PATTERNS
from gpa_lib.recsys.sim.world import image_part

#: The truth arrays that existed before ``image_share``; the digest covers exactly these.
TRUTH_FIELDS = (
    "article_latent",
    "article_attribute_latent",
    "article_popularity",
    "article_fit_offset",
    "article_shelf_weeks",
    "initial_stock",
    "final_stock",
    "sold_out_day",
    "units_sold",
    "units_restocked",
    "customer_base_style",
    "customer_size",
    "customer_rate",
    "customer_extra_items",
    "customer_price_sensitivity",
    "customer_return_propensity",
    "colour_trend",
    "pattern_trend",
    "season",
    "category_season",
    "transaction_fits",
)
#: SHA-256 of each store as simulated by the code before ``image_share`` (commit 6f523d8), on the
#: machine that built this book. The ``full`` preset gave 146c6059...23859 then and now (checked
#: by hand: 21 s is too slow for a unit test).
DIGESTS_BEFORE = {
    "tiny": "05a66e30b573aa25ff8a0291d4602cb5dbff0f72cf1fa2d1e236c6b3f29a29fa",
    "smoke": "fc4b02e9564c28f9cb0683b8de20e5cf110eff0279c8cac8f98ed9aa852acdd2",
    "test": "eda2dca29e7ed4cf837f08b71f6263007042cda41525ebd50c4d74f7d233d39d",
}


def store_digest(data) -> str:
    """SHA-256 over every table, the images and the truth of :data:`TRUTH_FIELDS` (and two weeks of
    replayed styles), column by column with names, dtypes and shapes."""
    digest = hashlib.sha256()

    def add(name: str, array) -> None:
        array = np.ascontiguousarray(array)
        digest.update(f"{name}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())

    frames = {
        "transactions": data.transactions,
        "articles": data.articles,
        "customers": data.customers,
        "availability": data.availability,
    }
    for name, frame in frames.items():
        add(f"{name}.index", frame.index.to_numpy())
        for column in frame.columns:
            values = frame[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                add(f"{name}.{column}", values.cat.codes.to_numpy())
                digest.update(repr(list(values.cat.categories)).encode())
            elif str(values.dtype) == "boolean":
                add(f"{name}.{column}", values.to_numpy(dtype=bool))
            else:
                add(f"{name}.{column}", values.to_numpy())
    add("images", data.images)
    for field in TRUTH_FIELDS:
        add(f"truth.{field}", getattr(data.truth, field))
    add("truth.styles", data.truth.customer_styles([0, data.truth.config.n_weeks - 1]))
    digest.update(str(data.truth.drift_seed).encode())
    return digest.hexdigest()


def tiny(**overrides):
    return simulate(300, 8, seed=5, progress=False, articles_per_week=10, **overrides)


@pytest.mark.parametrize("name", sorted(DIGESTS_BEFORE))
def test_image_share_zero_keeps_every_store_bit_for_bit(name):
    data = tiny() if name == "tiny" else simulate_preset(name, progress=False)
    assert data.truth.config.image_share == 0.0
    assert store_digest(data) == DIGESTS_BEFORE[name]
    assert not data.truth.article_image_latent.any() and not data.truth.article_image_hidden.any()


def test_image_share_is_validated_with_the_values_named():
    with pytest.raises(ValueError, match=r"image_share=-0.1 is out of range"):
        SimConfig(image_share=-0.1)
    with pytest.raises(
        ValueError, match=r"attribute_share=0.8 \+ image_share=0.3 must be at most 1"
    ):
        SimConfig(attribute_share=0.8, image_share=0.3)
    with pytest.raises(ValueError, match=r"image_share=0.2 needs images, but image_size=0"):
        SimConfig(image_share=0.2, image_size=0)
    SimConfig(attribute_share=0.7, image_share=0.3)  # the whole noise may go to the image
    with pytest.raises(ValueError, match=r"hidden has shape \(3, 1\)"):
        render_articles(*np.zeros((4, 3), int), np.random.default_rng(0), hidden=np.zeros((3, 1)))


def same_attributes(n: int, hidden: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """``n`` red solid cotton dresses: identical attributes, rendered from one seeded stream."""
    codes = [np.full(n, vocabulary.index(value)) for vocabulary, value in
             ((CATEGORIES, "dress"), (COLOURS, "red"), (PATTERNS, "solid"),
              (MATERIALS, "cotton"))]  # fmt: skip
    return render_articles(*codes, np.random.default_rng(seed), hidden=hidden)


def test_identical_attributes_get_different_images_and_latents_that_go_together():
    """What the image shows and the table does not: among articles with the same attributes, the
    image part of the latent is read off the pixels (held-out linear map), and without it the
    same articles differ only by jitter that says nothing about the latent."""
    config = SimConfig(latent_dim=16, attribute_share=0.5, image_share=0.3)
    n = 400
    hidden, image_latent = image_part(config, n, np.random.default_rng(1))  # (n, K), (n, D)
    assert hidden.shape == (n, len(IMAGE_HIDDEN)) and image_latent.shape == (n, 16)
    assert abs((image_latent**2).sum(1).mean() - 1.0) < 0.25  # the attribute part's scale
    shown = same_attributes(n, hidden)
    plain = same_attributes(n, None)
    assert (shown != plain).any(axis=(1, 2, 3)).mean() > 0.95  # the hidden values are drawn
    pixels = shown.reshape(n, -1).astype(np.float64) / 255.0
    assert heldout_r2(pixels, image_latent, seed=0) > 0.7
    jitter_only = plain.reshape(n, -1).astype(np.float64) / 255.0
    assert heldout_r2(jitter_only, image_latent, seed=0) < 0.1
    # the tone is the brightness of the dress, the length its height on the canvas
    inside = np.abs(shown.astype(np.float64) - 242).max(-1) > 20  # (n, H, W) foreground
    brightness = (shown.mean(-1) * inside).sum((1, 2)) / inside.sum((1, 2))
    height = inside.any(axis=2).sum(1)
    tone, length = (hidden[:, IMAGE_HIDDEN.index(k)] for k in ("tone", "length"))
    assert np.corrcoef(brightness, tone)[0, 1] > 0.8
    assert np.corrcoef(height, length)[0, 1] > 0.8


@pytest.fixture(scope="module")
def image_store():
    return simulate(600, 12, seed=2, progress=False, articles_per_week=60,
                    attribute_share=0.5, image_share=0.3)  # fmt: skip


def test_image_share_moves_variance_from_the_noise_into_what_only_images_show(image_store):
    truth = image_store.truth
    a, i = truth.config.attribute_share, truth.config.image_share
    noise = (
        truth.article_latent
        - np.sqrt(a) * truth.article_attribute_latent
        - np.sqrt(i) * truth.article_image_latent
    )
    assert abs((noise**2).sum(1).mean() - (1 - a - i)) < 0.05
    assert abs((truth.article_image_latent**2).sum(1).mean() - 1.0) < 0.3
    one_hot = pd.get_dummies(image_store.articles[list(ARTICLE_ATTRIBUTES)].astype(str))
    one_hot = one_hot.to_numpy(np.float64)  # (n, values)
    assert heldout_r2(one_hot, truth.article_image_latent, seed=0) < 0.05  # no attribute tells
    assert heldout_r2(one_hot, truth.article_latent, seed=0) < a + 0.1
    # the same seed draws the same catalogue: only what the image part touches moves
    control = simulate(600, 12, seed=2, progress=False, articles_per_week=60, attribute_share=0.5)
    pd.testing.assert_frame_equal(image_store.articles, control.articles, check_exact=True)
    np.testing.assert_array_equal(
        truth.article_attribute_latent, control.truth.article_attribute_latent
    )
    assert not np.array_equal(truth.article_latent, control.truth.article_latent)
    assert (image_store.images != control.images).any(axis=(1, 2, 3)).mean() > 0.95
    again = simulate(600, 12, seed=2, progress=False, articles_per_week=60,
                     attribute_share=0.5, image_share=0.3)  # fmt: skip
    np.testing.assert_array_equal(image_store.images, again.images)
    np.testing.assert_array_equal(truth.article_image_hidden, again.truth.article_image_hidden)

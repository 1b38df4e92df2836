"""Fashion DNA from the image alone (``use_attributes=False``): a full recommender that never reads
the attribute table, and whose predictions differ from those of tags only and of both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gpa_lib.recsys.data import ARTICLE_ATTRIBUTES, SalesData
from gpa_lib.recsys.data.toy import toy_store
from gpa_lib.recsys.models import FashionDNA
from gpa_lib.recsys.models.dna_network import DNANetwork
from tests.test_recsys_models import CUTOFF, RecommenderContract, candidates

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store():
    return toy_store(n_customers=200, n_weeks=12, seed=0)


def dna(**kwargs) -> FashionDNA:
    params = {"dna_dim": 8, "hidden": 0, "image_dim": 4, "n_train_customers": 120, "epochs": 6}
    params |= {"style_epochs": 6, "batch_size": 256, "random_state": 1}
    return FashionDNA(**(params | kwargs))


class TestImageOnlyFashionDNA(RecommenderContract):
    """The image-only variant is a full recommender: the toy images show each article's kind."""

    cold_start = True

    def make(self, **kwargs):
        return dna(use_attributes=False, **kwargs)


def scrambled(store: SalesData, seed: int = 0) -> SalesData:
    """The same store with every attribute column shuffled across articles (images untouched)."""
    articles = store.articles.copy()
    rng = np.random.default_rng(seed)
    for column in ARTICLE_ATTRIBUTES:
        if column in articles:
            values = articles[column]
            shuffled = values.to_numpy()[rng.permutation(len(articles))]
            articles[column] = pd.Categorical(shuffled, dtype=values.dtype)
    return SalesData(
        store.transactions,
        articles,
        store.customers,
        images=store.images,
        availability=store.availability,
    )


def test_image_only_ignores_the_attributes_and_changes_the_predictions(store):
    ids, _ = candidates(store)
    customers = store.customers.index.to_numpy()
    shuffled = scrambled(store)
    image_only = dna(use_attributes=False).fit(store, until=CUTOFF)
    assert image_only.network_.attributes is None
    on_shuffled = dna(use_attributes=False).fit(shuffled, until=CUTOFF)
    np.testing.assert_array_equal(
        image_only.score(customers, ids), on_shuffled.score(customers, ids)
    )
    both = dna().fit(store, until=CUTOFF)
    both_shuffled = dna().fit(shuffled, until=CUTOFF)
    tags = dna(image_dim=0).fit(store, until=CUTOFF)
    scores = {m: m.score(customers, ids) for m in (image_only, both, both_shuffled, tags)}
    assert np.abs(scores[both] - scores[both_shuffled]).max() > 1e-3  # both reads the attributes
    assert np.abs(scores[image_only] - scores[both]).max() > 1e-3
    assert np.abs(scores[image_only] - scores[tags]).max() > 1e-3
    # encoding a new catalogue needs only its images
    first = store.articles.index[:5]
    np.testing.assert_allclose(
        image_only.encode(shuffled.articles.iloc[:5], images=store.images[:5]),
        image_only.dna(first),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        image_only.encode(store.articles.iloc[:5, :0], images=store.images[:5]),
        image_only.dna(first),
        rtol=1e-5,
        atol=1e-6,
    )


def test_image_only_without_images_is_a_clear_error(store):
    with pytest.raises(
        ValueError, match=r"use_attributes=False needs image_dim >= 1 \(got image_dim=0\)"
    ):
        FashionDNA(image_dim=0, use_attributes=False)
    with pytest.raises(
        ValueError, match=r"use_attributes=False needs image_dim > 0 \(got image_dim=0\)"
    ):
        DNANetwork(10, image_dim=0, use_attributes=False)
    no_images = SalesData(
        store.transactions, store.articles, store.customers, availability=store.availability
    )
    with pytest.raises(ValueError, match="data.images is None"):
        dna(use_attributes=False).fit(no_images, until=CUTOFF)


def test_image_only_network_reads_only_images():
    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0)) - 0.5
    for hidden in (0, 8):
        network = DNANetwork(10, dna_dim=3, hidden=hidden, image_dim=4, use_attributes=False)
        assert network.attributes is None
        dna_vectors, bias = network(None, images)  # no attribute input at all
        assert dna_vectors.shape == (5, 3) and bias.shape == (5,)
        again, _ = network(torch.ones(5, 10), images)  # whatever is passed as attributes
        torch.testing.assert_close(again, dna_vectors, rtol=0, atol=0)

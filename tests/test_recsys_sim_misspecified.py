"""Utility terms outside the models' form (``SimConfig.misspecified``).

Off (the default) every store is the store of before, bit for bit; on, the utility gains a
(category x colour) taste per customer segment and one-week demand bursts, drawn from their own
stream: the same seed gives the same store.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_recsys_sim_images import DIGESTS_BEFORE, store_digest, tiny

from gpa_lib.recsys.sim import SimConfig, simulate_preset
from gpa_lib.recsys.sim.misspecified import BURST_HEIGHT, N_SEGMENTS, make_misspecification


@pytest.mark.parametrize("name", ["tiny", "smoke"])
def test_misspecified_zero_keeps_every_store_bit_for_bit(name):
    data = tiny() if name == "tiny" else simulate_preset(name, progress=False)
    assert data.truth.config.misspecified == 0.0
    assert data.truth.misspecification is None
    assert store_digest(data) == DIGESTS_BEFORE[name]


def test_misspecified_store_is_deterministic_and_differs_from_the_plain_one():
    first, again = tiny(misspecified=1.0), tiny(misspecified=1.0)
    assert store_digest(first) == store_digest(again)
    assert store_digest(first) != DIGESTS_BEFORE["tiny"]
    # the world before day 0 (catalogue, customers) is untouched: only the choices move
    plain = tiny()
    np.testing.assert_array_equal(first.truth.article_latent, plain.truth.article_latent)
    np.testing.assert_array_equal(first.truth.customer_base_style, plain.truth.customer_base_style)


def _terms(misspecified=1.0, n_customers=50, seed=3):
    config = SimConfig(n_customers=n_customers, n_weeks=10, misspecified=misspecified)
    launch_day = np.arange(40) - 5
    shelf_weeks = np.full(40, 6)
    return make_misspecification(config, launch_day, shelf_weeks, np.random.SeedSequence(seed))


def test_utility_is_the_segment_pair_taste_plus_the_burst():
    terms = _terms(misspecified=0.5)
    buyers, live = np.array([0, 7, 11]), np.arange(40)
    category, colour = live % 3, live % 5
    bursting = np.flatnonzero(terms.burst_day >= 0)
    day = int(terms.burst_day[bursting[0]]) + 3  # inside the first burst week
    utility = terms.utility(buyers, category, colour, live, day)
    assert utility.shape == (3, 40)
    for row, customer in enumerate(buyers):
        segment = terms.customer_segment[customer]
        for column, article in enumerate(live):
            in_burst = 0 <= day - terms.burst_day[article] < 7 and terms.burst_day[article] >= 0
            expected = 0.5 * (
                terms.affinity_scale * terms.pair_taste[segment, category[column], colour[column]]
                + BURST_HEIGHT * in_burst
            )
            assert utility[row, column] == pytest.approx(expected)
    # the pair taste is not additive in category and colour (the models' form cannot hold it)
    table = terms.pair_taste[0]
    additive = table.mean(1, keepdims=True) + table.mean(0, keepdims=True) - table.mean()
    assert np.abs(table - additive).max() > 0.5


def test_terms_are_deterministic_in_the_seed_and_bursts_stay_within_life():
    a, b, c = _terms(seed=3), _terms(seed=3), _terms(seed=4)
    np.testing.assert_array_equal(a.pair_taste, b.pair_taste)
    np.testing.assert_array_equal(a.burst_day, b.burst_day)
    assert not np.array_equal(a.pair_taste, c.pair_taste)
    assert set(np.unique(a.customer_segment)) <= set(range(N_SEGMENTS))
    launch_day = np.arange(40) - 5
    has = a.burst_day >= 0
    assert has.any()
    assert (a.burst_day[has] >= launch_day[has] + 7).all()
    assert (a.burst_day[has] < launch_day[has] + 7 * 6).all()


def test_misspecified_is_validated_with_the_value_named():
    with pytest.raises(ValueError, match=r"misspecified=-1.0 is out of range"):
        SimConfig(misspecified=-1.0)
    with pytest.raises(ValueError, match=r"misspecified=0.0 must be > 0"):
        _terms(misspecified=0.0)

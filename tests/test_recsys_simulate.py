"""The fashion-store simulator: every property the data issue lists, checked at small scale.

One store of the ``test`` preset (3,000 customers, 60 weeks) is simulated once per module; the
drift control, the determinism checks and the bad-input cases use smaller stores.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from gpa_lib.recsys.data import ARTICLE_ATTRIBUTES, SIZES
from gpa_lib.recsys.data import stats as store_stats
from gpa_lib.recsys.sim.images import PALETTE, silhouette
from gpa_lib.recsys.sim.simulate import STORE_PRESETS, SimConfig, simulate, simulate_preset
from gpa_lib.recsys.sim.vocabulary import CATEGORIES, PATTERNS

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def store():
    return simulate_preset("test", progress=False)


@pytest.fixture(scope="module")
def static_store():
    return simulate_preset("test", progress=False, drift=0.0, n_customers=1_000, n_weeks=30)


@pytest.fixture(scope="module")
def summary(store):
    return store_stats.store_summary(store)


# ---------------------------------------------------------------------- data model and determinism


def test_schema_and_alignment(store):
    tx, articles, customers, truth = (
        store.transactions,
        store.articles,
        store.customers,
        store.truth,
    )
    assert list(tx.columns) == [
        "t_dat",
        "customer",
        "article",
        "price",
        "order",
        "returned",
        "size",
    ]
    assert {c: str(t) for c, t in tx.dtypes.items()} == {
        "t_dat": "datetime64[ns]",
        "customer": "int64",
        "article": "int64",
        "price": "float64",
        "order": "int64",
        "returned": "boolean",
        "size": "category",
    }
    assert list(tx["size"].cat.categories) == list(SIZES) and tx["size"].cat.ordered
    assert tx["returned"].notna().all() and tx["size"].notna().all()  # the simulator knows both
    assert articles.index.name == "article" and customers.index.name == "customer"
    for column in ARTICLE_ATTRIBUTES:
        assert isinstance(articles[column].dtype, pd.CategoricalDtype), column
        assert articles[column].notna().all(), column
    assert store.images.shape == (len(articles), 32, 32, 3) and store.images.dtype == np.uint8
    d = truth.config.latent_dim
    assert truth.article_latent.shape == (len(articles), d)
    assert truth.customer_base_style.shape == (len(customers), d)
    assert truth.initial_stock.shape == (len(articles), len(SIZES))
    assert truth.transaction_fits.shape == (len(tx),)
    assert (tx["price"] > 0).all()
    assert store.meta["source"] == "simulator" and store.meta["config"]["n_customers"] == 3_000


def test_same_seed_same_bits_other_seed_other_data():
    first = simulate(400, 10, seed=3, progress=False, articles_per_week=10)
    again = simulate(400, 10, seed=3, progress=False, articles_per_week=10)
    other = simulate(400, 10, seed=4, progress=False, articles_per_week=10)
    for name in ("transactions", "articles", "customers"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name), check_exact=True)
    np.testing.assert_array_equal(first.images, again.images)
    for name in (
        "article_latent",
        "customer_base_style",
        "initial_stock",
        "sold_out_day",
        "transaction_fits",
    ):
        np.testing.assert_array_equal(getattr(first.truth, name), getattr(again.truth, name))
    np.testing.assert_array_equal(first.truth.customer_style(9), again.truth.customer_style(9))
    assert not first.transactions["article"].equals(other.transactions["article"])


# ---------------------------------------------------------------------- assortment, life, stock


def test_articles_launch_every_week_and_live_short(store, summary):
    assert summary["share_weeks_with_launches"] == 1.0
    launches = store_stats.weekly_sales(store)["launches"]
    assert (launches > 0).all()
    assert summary["median_article_life_weeks"] <= 12
    life = store_stats.article_life(store)
    assert (
        life["life_weeks"].max() <= STORE_PRESETS["test"].shelf_weeks[1] + 1
    )  # delisted at the end of the shelf life


def test_small_per_size_stock_sells_out_and_is_never_oversold(store, summary):
    truth = store.truth
    assert summary["share_articles_some_size_sold_out"] >= 0.3
    sold_out = truth.sold_out_day >= 0
    # per size: often one size is gone while others of the same article are still there
    assert (sold_out.any(axis=1) & ~sold_out.all(axis=1)).mean() >= 0.1
    # bookkeeping: what was sold came from the initial stock or from restocked returns
    np.testing.assert_array_equal(
        truth.final_stock, truth.initial_stock - truth.units_sold + truth.units_restocked
    )
    assert (truth.final_stock >= 0).all()
    tx = store.transactions
    counts = np.zeros_like(truth.units_sold)
    np.add.at(counts, (tx["article"].to_numpy(), tx["size"].cat.codes.to_numpy()), 1)
    np.testing.assert_array_equal(counts, truth.units_sold)
    # a size that sold out and never got a return back is never sold after that day
    day = (tx["t_dat"] - store.start).dt.days.to_numpy()
    out_day = truth.sold_out_day[tx["article"].to_numpy(), tx["size"].cat.codes.to_numpy()]
    never_restocked = (
        truth.units_restocked[tx["article"].to_numpy(), tx["size"].cat.codes.to_numpy()] == 0
    )
    assert not ((out_day >= 0) & never_restocked & (day > out_day)).any()


def test_every_sale_falls_in_an_availability_spell(store):
    spells = store.availability
    tx = store.transactions
    merged = tx[["article", "t_dat"]].reset_index().merge(spells, on="article")
    inside = (merged["on_sale_from"] <= merged["t_dat"]) & (
        merged["t_dat"] < merged["on_sale_until"]
    )
    assert inside.groupby(merged["index"]).sum().reindex(range(len(tx)), fill_value=0).eq(1).all()
    # articles sell out in every size: some are off sale before their planned delisting
    truth = store.truth
    launch_day = (store.articles["launch"] - store.start).dt.days.to_numpy()
    planned_end = store.start + pd.to_timedelta(
        launch_day + 7 * truth.article_shelf_weeks, unit="D"
    )
    last = spells.groupby("article")["on_sale_until"].max()
    early = last < pd.Series(planned_end, index=store.articles.index).reindex(last.index).clip(
        upper=store.end + pd.Timedelta(days=1)
    )
    assert early.mean() > 0.05


# ---------------------------------------------------------------------- customers, baskets, returns


def test_customers_buy_rarely_but_several_items(summary):
    assert 2 <= summary["median_orders_per_customer_year"] <= 12
    assert summary["mean_items_per_order"] >= 1.8


def test_returns_frequent_and_likelier_when_size_does_not_fit(store, summary):
    assert 0.35 <= summary["return_rate"] <= 0.60
    assert summary["return_rate_misfit"] >= summary["return_rate_fit"] + 0.3
    # visible without the truth too: an article bought in two sizes in one order gets returned more
    tx = store.transactions
    twice = tx.duplicated(["order", "article"], keep=False).to_numpy()
    returned = tx["returned"].to_numpy(dtype=bool)
    assert returned[twice].mean() > returned[~twice].mean() + 0.1


# ---------------------------------------------------------------------- season and trends


def test_category_shares_follow_the_season(store):
    shares = store_stats.attribute_shares(store, "category")  # (weeks, categories)
    season = store.truth.season[::7][shares.index.to_numpy()]
    correlation = {c: np.corrcoef(shares[c], season)[0, 1] for c in shares.columns}
    for summer in ("tshirt", "dress", "shorts"):
        assert correlation[summer] > 0.5, (summer, correlation)
    for winter in ("coat", "knitwear"):
        assert correlation[winter] < -0.5, (winter, correlation)


def test_colour_and_pattern_popularity_follow_trends(store):
    for name, trend in (
        ("colour", store.truth.colour_trend),
        ("pattern", store.truth.pattern_trend),
    ):
        shares = store_stats.attribute_shares(store, name, weeks_per_bin=4)  # (bins, values)
        utility = trend[shares.index.to_numpy()]  # (bins, values)
        correlation = [
            np.corrcoef(np.log(shares.iloc[:, j] + 1e-3), utility[:, j])[0, 1]
            for j in range(shares.shape[1])
        ]
        assert np.nanmean(correlation) > 0.4, (name, correlation)
        swing = (shares.max() - shares.min()) / shares.mean()
        assert swing.median() > 0.3, (name, swing)  # shares move by a third or more over the run


# ---------------------------------------------------------------------- latents, drift and choice


def test_styles_drift_and_purchases_follow_the_current_style(store):
    truth, tx = store.truth, store.transactions
    week = store_stats.transaction_weeks(store)
    early_style, late_style = truth.customer_styles([5, 55])
    assert np.corrcoef(early_style.ravel(), late_style.ravel())[0, 1] < 0.8
    customer, article = tx["customer"].to_numpy(), tx["article"].to_numpy()
    z = truth.article_latent

    def affinity(rows, style):
        return float((style[customer[rows]] * z[article[rows]]).sum(1).mean())

    early, late = week < 10, week >= 50
    # purchases are explained better by the style of their own time than by the style of another
    assert affinity(early, early_style) > affinity(early, late_style) + 0.05
    assert affinity(late, late_style) > affinity(late, early_style) + 0.05


def test_drift_zero_is_static(static_store):
    truth = static_store.truth
    styles = truth.customer_styles([0, 13, 29])
    for style in styles:
        np.testing.assert_array_equal(style, truth.customer_base_style)


def test_article_latents_are_attributes_plus_noise(store):
    truth, articles = store.truth, store.articles
    share = truth.config.attribute_share
    one_hot = pd.get_dummies(articles[list(ARTICLE_ATTRIBUTES)].astype(str)).to_numpy(
        float
    )  # (n, values)
    coef, *_ = np.linalg.lstsq(one_hot, truth.article_latent, rcond=None)
    explained = (
        1 - ((truth.article_latent - one_hot @ coef) ** 2).sum() / (truth.article_latent**2).sum()
    )
    assert abs(explained - share) < 0.1, explained
    noise = truth.article_latent - np.sqrt(share) * truth.article_attribute_latent
    assert np.abs(noise).mean() > 0.05  # the part attributes cannot tell is real


def test_choice_follows_affinity_popularity_and_price(store):
    truth, tx, articles = store.truth, store.transactions, store.articles
    rng = np.random.default_rng(0)
    rows = rng.choice(len(tx), size=5_000, replace=False)
    customer, article = tx["customer"].to_numpy()[rows], tx["article"].to_numpy()[rows]
    week = store_stats.transaction_weeks(store)[rows]
    style = truth.customer_styles([20])[0]
    near = np.abs(week - 20) <= 4
    z = truth.article_latent
    launch_week = ((articles["launch"] - store.start).dt.days // 7).to_numpy()
    on_sale = np.flatnonzero((launch_week <= 20) & (launch_week >= 20 - 8))
    bought = (style[customer[near]] * z[article[near]]).sum(1).mean()
    random = (style[customer[near]] * z[rng.choice(on_sale, size=near.sum())]).sum(1).mean()
    assert bought > random + 0.1
    units = np.bincount(tx["article"], minlength=len(articles))
    assert pd.Series(units).corr(pd.Series(truth.article_popularity), method="spearman") > 0.3
    # price-sensitive customers pay less relative to the category's list price
    relative = (
        tx["price"]
        / articles["list_price"]
        .groupby(articles["category"], observed=True)
        .transform("median")
        .reindex(tx["article"])
        .to_numpy()
    )
    sensitivity = truth.customer_price_sensitivity[tx["customer"].to_numpy()]
    low, high = np.quantile(sensitivity, [0.25, 0.75])
    assert relative[sensitivity >= high].mean() < relative[sensitivity <= low].mean() * 0.9


# ---------------------------------------------------------------------- images


def test_images_show_category_colour_and_pattern(store):
    images, articles = store.images.astype(float), store.articles
    background = np.abs(images - 242).max(axis=-1) < 20  # (n, H, W) roughly background
    for k, category in enumerate(CATEGORIES):
        rows = (articles["category"].cat.codes == k).to_numpy()
        if not rows.any():
            continue
        mask = silhouette(category, 32)
        foreground = ~background[rows]
        assert (foreground == mask).mean() > 0.85, category  # the silhouette is the category's
    solid = (articles["pattern"] == "solid").to_numpy()
    palette = np.array(list(PALETTE.values()), float)
    masks = np.stack([silhouette(c, 32) for c in CATEGORIES])[
        articles["category"].cat.codes.to_numpy()[solid]
    ]
    mean_colour = (images[solid] * masks[..., None]).sum((1, 2)) / masks.sum((1, 2))[:, None]
    nearest = np.argmin(((mean_colour[:, None] - palette[None]) ** 2).sum(-1), axis=1)
    assert (nearest == articles["colour"].cat.codes.to_numpy()[solid]).mean() > 0.8
    textured = articles["pattern"].isin([p for p in PATTERNS if p != "solid"]).to_numpy()
    spread = images.std(axis=(1, 2)).mean(-1)
    assert spread[textured].mean() > spread[solid].mean()
    assert len(np.unique(store.images.reshape(len(images), -1), axis=0)) == len(images)


# ---------------------------------------------------------------------- summaries, plots, bad input


def test_store_stats_tables_and_figures(store):
    weekly = store_stats.weekly_sales(store)
    assert len(weekly) == 60 and weekly["items"].sum() == len(store.transactions)
    assert store_stats.basket_sizes(store).sum() == store.transactions["order"].nunique()
    rates = store_stats.return_rates(store, "category")
    assert rates["items"].sum() == len(store.transactions)
    figure = store_stats.plot_store_overview(store)
    for ax in figure.axes[:6]:
        if ax.get_visible() and ax.has_data():
            assert ax.get_xlabel() and ax.get_ylabel()
    matplotlib.pyplot.close(figure)
    with pytest.raises(ValueError, match="by='nope'"):
        store_stats.return_rates(store, "nope")


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="drift=1.5"):
        SimConfig(drift=1.5)
    with pytest.raises(ValueError, match="n_customers=0"):
        simulate(0, 4, progress=False)
    with pytest.raises(TypeError, match="colour_count"):
        simulate(10, 2, progress=False, colour_count=3)
    with pytest.raises(ValueError, match="preset='huge'"):
        simulate_preset("huge")
    with pytest.raises(ValueError, match="weeks="):
        simulate(50, 2, progress=False, articles_per_week=5).truth.customer_style(2)

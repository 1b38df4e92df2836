"""What a store looks like: weekly sales, returns, baskets, article life, season and trend shares.

Functions over a :class:`~gpa_lib.recsys.data.SalesData` that return pandas objects (the chapters
plot them, the tests check the simulator's properties with them), and plotting helpers that return
matplotlib figures with labelled axes. Weeks count from the first transaction day.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.data.sales import SalesData

DAYS_PER_YEAR = 365.25


def transaction_weeks(data: SalesData) -> np.ndarray:
    """``(n_transactions,)`` int64: whole weeks from the first transaction day."""
    t_dat = data.transactions["t_dat"]
    return (
        ((t_dat - t_dat.iloc[0]).dt.days // 7).to_numpy(np.int64)
        if len(t_dat)
        else np.zeros(0, np.int64)
    )


def weekly_sales(data: SalesData) -> pd.DataFrame:
    """Per week (index ``week``, column ``week_start``): items, orders, active customers, revenue
    (currency units), return rate among items whose outcome is known, and articles launched."""
    tx = data.transactions
    week = transaction_weeks(data)
    grouped = tx.assign(week=week).groupby("week")
    out = pd.DataFrame(
        {
            "items": grouped.size(),
            "orders": grouped["order"].nunique(),
            "customers": grouped["customer"].nunique(),
            "revenue": grouped["price"].sum(),
            "return_rate": grouped["returned"].mean().astype(float),
        }
    )
    out.insert(0, "week_start", data.start + pd.to_timedelta(7 * out.index.to_numpy(), unit="D"))
    launch_week = (data.articles["launch"] - data.start).dt.days // 7
    out["launches"] = launch_week.value_counts().reindex(out.index, fill_value=0).to_numpy()
    return out


def return_rates(data: SalesData, by: str = "category") -> pd.DataFrame:
    """Items, returned items and return rate per value of the article attribute ``by`` (known outcomes only)."""
    if by not in data.articles.columns:
        raise ValueError(
            f"by={by!r} is not an articles column; choose from {list(data.articles.columns)}"
        )
    tx = data.transactions
    known = tx["returned"].notna().to_numpy()
    values = data.articles[by].to_numpy()[
        data.articles.index.get_indexer(tx["article"].to_numpy()[known])
    ]
    returned = tx["returned"].to_numpy()[known].astype(bool)
    frame = pd.DataFrame({by: values, "returned": returned})
    out = frame.groupby(by, observed=True)["returned"].agg(items="size", returned="sum")
    out["return_rate"] = out["returned"] / out["items"]
    return out


def basket_sizes(data: SalesData) -> pd.Series:
    """Number of orders by items per order (index: items in the order)."""
    items = data.transactions.groupby("order").size()
    return items.value_counts().sort_index().rename("orders").rename_axis("items_per_order")


def orders_per_customer_year(data: SalesData, active_only: bool = True) -> pd.Series:
    """Orders per year for each customer over the span of the data (``active_only``: with >= 1 order)."""
    tx = data.transactions
    years = ((data.end - data.start).days + 1) / DAYS_PER_YEAR if len(tx) else np.nan
    orders = tx.groupby("customer")["order"].nunique()
    if not active_only:
        orders = orders.reindex(data.customers.index, fill_value=0)
    return (orders / years).rename("orders_per_year")


def article_life(data: SalesData) -> pd.DataFrame:
    """Per article sold: launch, first and last sale, units, ``life_weeks`` (launch to last sale) and
    ``censored`` (still selling in the last week of the data, so its life is a lower bound)."""
    tx = data.transactions
    grouped = tx.groupby("article")["t_dat"]
    out = pd.DataFrame(
        {"first_sale": grouped.min(), "last_sale": grouped.max(), "units": grouped.size()}
    )
    launch = data.articles["launch"].reindex(out.index)
    out.insert(0, "launch", launch.fillna(out["first_sale"]))
    out["life_weeks"] = (out["last_sale"] - out["launch"]).dt.days / 7.0
    out["censored"] = out["last_sale"] > data.end - pd.Timedelta(days=7)
    return out


def attribute_shares(data: SalesData, attribute: str, weeks_per_bin: int = 1) -> pd.DataFrame:
    """Share of items sold per value of the article attribute ``attribute`` (columns) per bin of
    ``weeks_per_bin`` weeks (index: first week of the bin); rows sum to 1."""
    if attribute not in data.articles.columns:
        raise ValueError(f"attribute={attribute!r} is not an articles column")
    column = data.articles[attribute]
    values = column.to_numpy()[
        data.articles.index.get_indexer(data.transactions["article"].to_numpy())
    ]
    if isinstance(column.dtype, pd.CategoricalDtype):  # keep the category order in the columns
        values = pd.Categorical(values, dtype=column.dtype)
    frame = pd.DataFrame(
        {"week": transaction_weeks(data) // weeks_per_bin * weeks_per_bin, attribute: values}
    )
    counts = (
        frame.groupby(["week", attribute], observed=False).size().unstack(attribute, fill_value=0)
    )
    return counts.div(counts.sum(axis=1), axis=0)


def season_shares(data: SalesData, weeks_per_bin: int = 4) -> pd.DataFrame:
    """Category shares over time: they move with the season."""
    return attribute_shares(data, "category", weeks_per_bin)


def trend_shares(data: SalesData, weeks_per_bin: int = 4) -> dict[str, pd.DataFrame]:
    """Colour and pattern shares over time: population trends."""
    return {name: attribute_shares(data, name, weeks_per_bin) for name in ("colour", "pattern")}


def store_summary(data: SalesData) -> dict[str, Any]:
    """Headline numbers of a store (JSON-able floats and ints); with ground truth, also stock and fit."""
    tx = data.transactions
    life = article_life(data)
    launch_week = ((data.articles["launch"] - data.start).dt.days // 7).dropna()
    n_weeks = int(transaction_weeks(data).max()) + 1 if len(tx) else 0
    weeks_with_launch = launch_week[(launch_week >= 0) & (launch_week < n_weeks)].nunique()
    known = tx["returned"].dropna()
    summary: dict[str, Any] = {
        "n_items": len(tx),
        "n_orders": int(tx["order"].nunique()),
        "n_active_customers": int(tx["customer"].nunique()),
        "n_articles": len(data.articles),
        "n_weeks": n_weeks,
        "median_orders_per_customer_year": float(orders_per_customer_year(data).median()),
        "mean_items_per_order": float(len(tx) / max(tx["order"].nunique(), 1)),
        "return_rate": float(known.mean()) if len(known) else float("nan"),
        "median_article_life_weeks": float(life["life_weeks"].median()),
        "share_weeks_with_launches": float(weeks_with_launch / max(n_weeks, 1)),
    }
    truth = data.truth
    if (
        truth is not None
        and hasattr(truth, "transaction_fits")
        and len(truth.transaction_fits) == len(tx)
    ):
        fits = truth.transaction_fits
        returned = tx["returned"].to_numpy(dtype=bool, na_value=False)
        sold_out = truth.sold_out_day >= 0
        summary.update(
            {
                "return_rate_fit": float(returned[fits].mean()),
                "return_rate_misfit": float(returned[~fits].mean()),
                "share_items_misfit": float(1 - fits.mean()),
                "share_articles_some_size_sold_out": float(sold_out.any(axis=1).mean()),
                "share_articles_all_sizes_sold_out": float(sold_out.all(axis=1).mean()),
                "median_initial_stock_per_size": float(np.median(truth.initial_stock)),
            }
        )
    return summary


# ---------------------------------------------------------------------- plots


def plot_weekly_sales(data: SalesData, ax=None):
    """Items and orders per week (left axis) and return rate (right axis)."""
    import matplotlib.dates
    import matplotlib.pyplot as plt

    weekly = weekly_sales(data)
    fig, ax = _figure(ax, plt)
    ax.plot(weekly["week_start"], weekly["items"], label="items")
    ax.plot(weekly["week_start"], weekly["orders"], label="orders")
    locator = matplotlib.dates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
    ax.set_xlabel("week starting")
    ax.set_ylabel("count per week")
    if weekly["return_rate"].notna().any():
        twin = ax.twinx()
        twin.plot(
            weekly["week_start"],
            100 * weekly["return_rate"],
            color="tab:red",
            lw=1,
            label="returned",
        )
        twin.set_ylabel("items returned (%)")
        twin.set_ylim(0, 100)
    ax.legend(loc="upper left")
    ax.set_title("weekly sales")
    return fig


def plot_basket_sizes(data: SalesData, ax=None):
    import matplotlib.pyplot as plt

    sizes = basket_sizes(data)
    fig, ax = _figure(ax, plt)
    ax.bar(sizes.index, 100 * sizes / sizes.sum())
    ax.set_xlabel("items per order")
    ax.set_ylabel("orders (%)")
    ax.set_title("basket sizes")
    return fig


def plot_article_life(data: SalesData, ax=None):
    import matplotlib.pyplot as plt

    life = article_life(data)
    fig, ax = _figure(ax, plt)
    ax.hist(life["life_weeks"], bins=np.arange(0, life["life_weeks"].max() + 2, 1))
    ax.axvline(
        life["life_weeks"].median(),
        color="k",
        ls="--",
        label=f"median {life['life_weeks'].median():.1f} weeks",
    )
    ax.set_xlabel("selling life: launch to last sale (weeks)")
    ax.set_ylabel("articles")
    ax.legend()
    ax.set_title("article life")
    return fig


def plot_returns(data: SalesData, by: str = "category", ax=None):
    import matplotlib.pyplot as plt

    rates = return_rates(data, by)
    fig, ax = _figure(ax, plt)
    ax.barh(rates.index.astype(str), 100 * rates["return_rate"])
    ax.set_xlabel("items returned (%)")
    ax.set_ylabel(by)
    ax.set_title(f"returns by {by}")
    return fig


def plot_shares(shares: pd.DataFrame, title: str, top: int = 8, ax=None):
    """Stacked shares over weeks; the ``top`` largest columns, the rest as ``other``."""
    import matplotlib.pyplot as plt

    order = shares.sum().sort_values(ascending=False).index
    shown = shares[order[:top]].copy()
    if len(order) > top:
        shown["other"] = shares[order[top:]].sum(axis=1)
    fig, ax = _figure(ax, plt)
    ax.stackplot(shown.index, 100 * shown.T.to_numpy(), labels=[str(c) for c in shown.columns])
    ax.set_xlabel("week (from the first sale)")
    ax.set_ylabel("share of items sold (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    return fig


def plot_store_overview(data: SalesData):
    """A 3 x 2 figure (10 in wide, the page's column): weekly sales, basket sizes, article life,
    returns, season and colour shares."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(10, 11), constrained_layout=True)
    plot_weekly_sales(data, axes[0, 0])
    plot_basket_sizes(data, axes[0, 1])
    plot_article_life(data, axes[1, 0])
    if data.transactions["returned"].notna().any():
        plot_returns(data, "category", axes[1, 1])
    else:
        axes[1, 1].set_axis_off()
        axes[1, 1].text(0.5, 0.5, "returns unknown", ha="center")
    plot_shares(season_shares(data), "category shares (season)", ax=axes[2, 0])
    plot_shares(trend_shares(data)["colour"], "colour shares (trends)", ax=axes[2, 1])
    plt.close(fig)  # shown where the chapter places it (a glued figure)
    return fig


def _figure(ax, plt):
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
        return fig, ax
    return ax.figure, ax

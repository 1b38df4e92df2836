"""A synthetic set in the interactions format, shaped like a small real one: string ids, items with
multi-label tags, a categorical, a number and a line of text, no repeat purchases, many users with a
single interaction, and times to the second. For tests and for timing the command line
(``data/interactions.md``); its numbers mean nothing about any real store.

Each user has a taste over the tags; each item sells for a few weeks after its launch; a user's
interactions pick, at random times, items on sale then that share tags with their taste.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from gpa_lib.results import atomic_write_text

TAGS = tuple(f"tag{i:02d}" for i in range(24))
GENRES = ("drama", "comedy", "documentary", "thriller", "family")
WORDS = ("soft", "bright", "classic", "bold", "quiet", "warm", "light", "deep", "plain", "wild")


def write_synthetic_interactions(
    root: str | os.PathLike,
    *,
    n_users: int = 60,
    n_items: int = 120,
    n_events: int = 1_500,
    weeks: int = 20,
    single_share: float = 0.2,
    seed: int = 0,
    start: str = "2024-01-01",
) -> Path:
    """Write ``interactions.csv``, ``items.csv`` and ``users.csv`` under ``root``; returns ``root``.

    ``n_events`` interactions (about; no user takes an item twice) of ``n_users`` users
    (``single_share`` of them with exactly one) over ``n_items`` items and ``weeks`` weeks.
    """
    if n_users < 2 or n_items < 2 or weeks < 1 or n_events < n_users:
        raise ValueError(
            f"n_users={n_users}, n_items={n_items} must be >= 2, weeks={weeks} >= 1 and "
            f"n_events={n_events} >= n_users"
        )
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    span = weeks * 7 * 86_400  # seconds
    origin = pd.Timestamp(start)
    # items: launch spread over the span (a tenth before it starts selling), a few tags each
    launch = np.sort(rng.uniform(-0.1, 0.9, n_items)) * span
    life = rng.uniform(3, 10, n_items) * 7 * 86_400
    item_tags = (rng.random((n_items, len(TAGS))) < 2.5 / len(TAGS)).astype(float)
    item_tags[np.arange(n_items), rng.integers(0, len(TAGS), n_items)] = 1.0
    item_ids = [f"it-{i:05d}-{rng.integers(36**3):x}" for i in range(n_items)]
    # users: a taste over tags; a share buy once, the others share the rest of the events
    taste = rng.gamma(0.3, 1.0, (n_users, len(TAGS)))
    single = rng.random(n_users) < single_share
    weight = rng.pareto(1.5, n_users) + 1
    weight[single] = 0
    rest = n_events - int(single.sum())
    counts = np.where(
        single, 1, 1 + rng.multinomial(max(rest - (~single).sum(), 0), weight / weight.sum())
    )
    counts = np.minimum(counts, 3 * n_items // 4)
    user_ids = [f"u{rng.integers(16**8):08x}{u}" for u in range(n_users)]
    rows = []
    for u in range(n_users):
        times = np.sort(rng.uniform(0, span, counts[u]))
        taken: set[int] = set()
        for t in times:
            on_sale = np.flatnonzero((launch <= t) & (t < launch + life))
            on_sale = np.array([i for i in on_sale if i not in taken])
            if not len(on_sale):
                continue
            affinity = item_tags[on_sale] @ taste[u] + 0.05
            pick = int(rng.choice(on_sale, p=affinity / affinity.sum()))
            taken.add(pick)
            rows.append((user_ids[u], item_ids[pick], t))
    events = pd.DataFrame(rows, columns=["user", "item", "seconds"]).sort_values("seconds")
    when = origin + pd.to_timedelta(np.floor(events["seconds"]), unit="s")
    events["time"] = when.dt.strftime("%Y-%m-%d %H:%M:%S")
    events["price"] = np.round(rng.choice([4.99, 9.99, 14.99], len(events)), 2)
    lines = ["user,item,time,price"] + [
        f"{u},{i},{t},{p:.2f}"
        for u, i, t, p in events[["user", "item", "time", "price"]].itertuples(index=False)
    ]
    atomic_write_text(root / "interactions.csv", "\n".join(lines) + "\n")
    item_lines = ["item,tags,genre,year,description"]
    for i in range(n_items):
        tags = "|".join(TAGS[j] for j in np.flatnonzero(item_tags[i]))
        words = " ".join(rng.choice(WORDS, 4))
        item_lines.append(f"{item_ids[i]},{tags},{GENRES[i % len(GENRES)]},{1990 + i % 30},{words}")
    atomic_write_text(root / "items.csv", "\n".join(item_lines) + "\n")
    user_lines = ["user,segment"] + [f"{u},{'ab'[k % 2]}" for k, u in enumerate(user_ids)]
    atomic_write_text(root / "users.csv", "\n".join(user_lines) + "\n")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpa_lib.recsys.data.interactions_synthetic", description=__doc__
    )
    parser.add_argument("root", help="folder to write into")
    parser.add_argument("--users", type=int, default=900)
    parser.add_argument("--items", type=int, default=1_800)
    parser.add_argument(
        "--events", type=int, default=112_000, help="asked for; no repeats leave fewer"
    )
    parser.add_argument("--weeks", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = write_synthetic_interactions(
        args.root,
        n_users=args.users,
        n_items=args.items,
        n_events=args.events,
        weeks=args.weeks,
        seed=args.seed,
    )
    print(f"wrote {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The simulator's vocabulary: the names its articles are described with.

The catalogue (:mod:`~gpa_lib.recsys.sim.world`) draws attributes from these tuples and the image
renderer (:mod:`~gpa_lib.recsys.sim.images`) draws them; both import them from here, so the order
of every tuple is the order of the codes in the simulated data.
"""

from __future__ import annotations

CATEGORIES = (
    "tshirt",
    "shirt",
    "dress",
    "skirt",
    "trousers",
    "jeans",
    "shorts",
    "jacket",
    "coat",
    "knitwear",
    "shoes",
    "bag",
)
COLOURS = (
    "black",
    "white",
    "grey",
    "navy",
    "blue",
    "red",
    "pink",
    "green",
    "olive",
    "beige",
    "brown",
    "yellow",
)
PATTERNS = ("solid", "stripes", "checks", "dots", "floral", "print")
MATERIALS = ("cotton", "linen", "viscose", "polyester", "denim", "wool", "leather", "canvas")
PRICE_TIERS = ("budget", "mid", "premium")
SEASONS = ("spring-summer", "autumn-winter", "all-season")

"""The simulator's configuration: every knob in one dataclass, and the named stores."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the simulator; ``STORE_PRESETS`` names the usual ones. Units are in the comments."""

    # --- size and randomness
    n_customers: int = 100_000  # customers, all registered from day 0
    n_weeks: int = 104  # weeks simulated (7 days each)
    seed: int = 0  # drives everything: same config, same data, bit for bit
    start: str = "2023-01-02"  # first simulated day (a Monday); seasons follow this calendar
    # --- assortment and stock
    articles_per_week: int = 60  # launches per week, launch days spread over the week
    # planned weeks on sale, uniform in [lo, hi]; an article leaves earlier if every size sells out
    shelf_weeks: tuple[int, int] = (4, 16)
    n_brands: int = 40  # brands, each with one price tier and a category focus
    # mean units per article (all sizes) / expected sales of an average article over its life
    stock_cover: float = 0.8
    forecast_noise: float = 0.6  # log-sd of the buyer's demand forecast that sets the stock
    markdown: float = 0.3  # price cut (fraction) once an article is markdown_weeks old
    markdown_weeks: int = 6  # age in weeks at which the markdown starts
    # --- latent space
    latent_dim: int = 16  # D: dimension of customer styles and article latents
    attribute_share: float = 0.7  # share of an article latent's variance from its attributes
    # share of an article latent's variance that only its image shows (tone and length of the
    # drawing, see images.IMAGE_HIDDEN), taken from the noise: attribute_share + image_share <= 1;
    # needs image_size > 0. 0 = the image adds nothing the attribute table does not say
    image_share: float = 0.0
    # --- customers
    orders_per_year: float = 6.0  # median shopping rate across customers (orders per year)
    rate_spread: float = 0.8  # log-sd of shopping rates across customers
    # mean items per order beyond the first (gamma across customers, Poisson per order)
    extra_items: float = 1.3
    max_items: int = 8  # largest number of distinct articles in one order
    # median weight on log(price / category list price) in the utility; lognormal, log-sd 0.5
    price_sensitivity: float = 1.0
    # --- choice (utility units: a difference of 1 multiplies the odds by e)
    affinity_scale: float = 2.0  # std of the style x article affinity term
    popularity_scale: float = 1.0  # std of an article's intrinsic appeal
    novelty_boost: float = 1.0  # extra utility on launch day
    novelty_weeks: float = 3.0  # decay time of the novelty boost (weeks)
    season_scale: float = 1.5  # utility of a fully seasonal category at midsummer minus its mean
    trend_scale: float = 0.7  # std over time of each colour's and pattern's trend utility
    trend_weeks: tuple[float, float] = (40.0, 150.0)  # range of the trend waves' periods (weeks)
    volume_seasonality: float = 0.2  # relative swing of order volume over the year (peak late Nov)
    # --- drift of tastes
    drift: float = 0.7  # amplitude of the moving part of a style, 0..1; 0 = static tastes
    # correlation time of the moving part (weeks): AR(1) per week with rho = exp(-1 / drift_weeks)
    drift_weeks: float = 30.0
    # --- sizes and returns
    size_noise: float = 0.15  # probability an item is ordered one size off the customer's own
    fit_offset_rate: float = 0.25  # share of articles that run one size small or large
    bracket_rate: float = 0.1  # probability an item is ordered in two adjacent sizes at once
    return_fit: float = 0.25  # return probability of an item that fits, for an average customer
    return_misfit: float = 0.85  # return probability of an item that does not fit
    return_spread: float = 0.7  # sd of customers' return propensity (logit scale)
    restock_days: int = 10  # days until a returned item is back in stock
    # --- misspecification (sim/misspecified.py): utility terms outside the models' form
    # scale of (category x colour) tastes per customer segment and one-week demand bursts of 30% of
    # the articles; 0 = off: the utility has the models' form and every store is as before
    misspecified: float = 0.0
    # --- output
    image_size: int = 32  # side in pixels of the procedural article images; 0 = no images

    def __post_init__(self) -> None:
        checks = [
            ("n_customers", self.n_customers >= 1),
            ("n_weeks", self.n_weeks >= 1),
            ("articles_per_week", self.articles_per_week >= 1),
            ("n_brands", self.n_brands >= 1),
            ("shelf_weeks", 1 <= self.shelf_weeks[0] <= self.shelf_weeks[1]),
            ("latent_dim", self.latent_dim >= 1),
            ("max_items", self.max_items >= 1),
            ("drift", 0.0 <= self.drift <= 1.0),
            ("drift_weeks", self.drift_weeks > 0),
            ("attribute_share", 0.0 <= self.attribute_share <= 1.0),
            ("image_share", 0.0 <= self.image_share <= 1.0),
            ("markdown", 0.0 <= self.markdown < 1.0),
            ("restock_days", self.restock_days >= 1),
            ("image_size", self.image_size == 0 or self.image_size >= 8),
            ("orders_per_year", self.orders_per_year > 0),
            ("stock_cover", self.stock_cover > 0),
            ("misspecified", self.misspecified >= 0),
        ]
        checks += [
            (name, 0.0 <= getattr(self, name) <= 1.0)
            for name in (
                "size_noise",
                "fit_offset_rate",
                "bracket_rate",
                "return_fit",
                "return_misfit",
            )
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is out of range for SimConfig")
        if self.attribute_share + self.image_share > 1.0 + 1e-12:
            raise ValueError(
                f"attribute_share={self.attribute_share!r} + image_share={self.image_share!r} "
                "must be at most 1 (the image part is taken from the noise)"
            )
        if self.image_share > 0 and self.image_size == 0:
            raise ValueError(
                f"image_share={self.image_share!r} needs images, but image_size=0; "
                "set image_size >= 8 or image_share=0"
            )

    @property
    def n_days(self) -> int:
        return 7 * self.n_weeks


#: Named stores. ``full`` is the store of chapters 4 and 5 and of ``python -m gpa_lib.bench recsys``
#: (100,000 customers, 104 weeks, drift 0.7: the defaults); ``smoke`` the chapters' seconds-long
#: stand-in; ``test`` the property tests' store; ``images`` the store of the tags / image / both
#: comparison (``--study dna-variants``): a year of 20,000 customers in which the images show 30% of
#: each article latent that no attribute names (its control: the same with ``image_share=0``).
#: The chapters name a preset, never the fields.
STORE_PRESETS: dict[str, SimConfig] = {
    "full": SimConfig(),
    "smoke": SimConfig(n_customers=2_000, n_weeks=30, articles_per_week=15),
    "test": SimConfig(n_customers=3_000, n_weeks=60, articles_per_week=20),
    "images": SimConfig(n_customers=20_000, n_weeks=52, attribute_share=0.5, image_share=0.3),
}

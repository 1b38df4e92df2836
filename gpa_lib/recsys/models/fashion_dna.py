"""Fashion DNA (Bracher, Heinz & Vollgraf, arXiv 1609.02489): articles -> DNA, customers -> styles.

``P(c buys a) = sigmoid(style_c . DNA_a + b_a + b_c)`` where ``(DNA_a, b_a)`` come from a feedforward
network over the article's attributes (one-hot) and image (small CNN), and ``style_c``, ``b_c`` are
free per customer. The network and the styles of ``n_train_customers`` customers are trained jointly
on their purchases against negatives sampled among the articles on sale in the same week; then the
network is frozen and every other customer's style is fitted from their purchases alone (the paper's
"customers outside the training set"), which :meth:`FashionDNA.fit_customers` also does on demand.

The attributes are those of :mod:`gpa_lib.recsys.models.features`: the fashion attributes, or any
categorical, multi-valued, numeric and text attributes a data set declares in ``meta``; the columns
it does not read are logged (``encoder_.unread``).

Because DNA needs only attributes and an image, every article can be scored, including those
launched after the cutoff (cold start). Similar articles are those at a small angle in DNA space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import History, Recommender, rows_of
from gpa_lib.recsys.models.dna_network import (
    DNANetwork,
    angle_degrees,
    images_to_tensor,
    purchase_logits,
)
from gpa_lib.recsys.models.features import article_features
from gpa_lib.recsys.models.training import OnSaleSampler, RowAdagradTable, train_sampled_logistic


class FashionDNA(Recommender):
    """Fashion DNA with cold start and styles for customers outside the training set.

    Sizes: ``dna_dim`` (D), ``hidden`` units, ``image_dim`` features of the image CNN (0 = no images;
    ignored when the data has none). Inputs, as the paper's three variants: attributes only
    (``image_dim=0``), attributes and image (``image_dim > 0``), image only (``image_dim > 0`` and
    ``use_attributes=False``: the network never reads the attribute table). Training:
    ``n_train_customers`` customers (sampled among those with at least ``min_purchases`` distinct
    purchases; ``None`` = all), ``epochs`` passes with ``n_negatives`` negatives per purchase,
    ``batch_size`` purchases, Adam ``lr`` for the network, row-wise Adagrad ``style_lr`` for styles
    with L2 penalty ``l2``; ``style_epochs`` for the styles of the remaining customers with the
    network frozen. The image CNN re-encodes ``image_batch``
    articles per batch and caches the rest (see ``_fit``).
    """

    name = "fashion_dna"
    cold_articles = True

    def __init__(
        self,
        dna_dim: int = 32,
        hidden: int = 128,
        image_dim: int = 16,
        n_train_customers: int | None = 20_000,
        min_purchases: int = 3,
        epochs: int = 4,
        style_epochs: int = 3,
        n_negatives: int = 4,
        batch_size: int = 8192,
        image_batch: int = 256,
        lr: float = 3e-3,
        style_lr: float = 0.3,
        l2: float = 1e-2,
        use_attributes: bool = True,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if dna_dim < 1 or hidden < 0 or image_dim < 0:
            raise ValueError(
                f"dna_dim={dna_dim} must be >= 1, hidden={hidden} and image_dim={image_dim} >= 0"
            )
        if not use_attributes and image_dim < 1:
            raise ValueError(
                f"use_attributes=False needs image_dim >= 1 (got image_dim={image_dim}): "
                "the image-only variant reads nothing but the image"
            )
        if n_train_customers is not None and n_train_customers < 1:
            raise ValueError(f"n_train_customers={n_train_customers} must be >= 1 or None")
        self.dna_dim, self.hidden, self.image_dim = int(dna_dim), int(hidden), int(image_dim)
        self.n_train_customers, self.min_purchases = n_train_customers, int(min_purchases)
        self.epochs, self.style_epochs, self.n_negatives = (
            int(epochs),
            int(style_epochs),
            int(n_negatives),
        )
        self.batch_size, self.lr, self.style_lr, self.l2 = (
            int(batch_size),
            float(lr),
            float(style_lr),
            float(l2),
        )
        self.image_batch = int(image_batch)
        self.use_attributes = bool(use_attributes)

    # ------------------------------------------------------------------ fitting
    def _fit(self, history: History, data: SalesData) -> None:
        generator = torch.Generator().manual_seed(self.random_state)
        torch.manual_seed(self.random_state)  # the network's initialisation
        matrix, self.encoder_ = article_features(data)  # the attributes read: data.meta's kinds
        features = torch.from_numpy(matrix)  # (n_articles, F)
        use_images = self.image_dim > 0 and data.images is not None
        if not self.use_attributes and not use_images:
            raise ValueError(
                "use_attributes=False needs images, but data.images is None: the image-only "
                "variant has no other input"
            )
        images = images_to_tensor(data.images) if use_images else None  # (n_articles, 3, 16, 16)
        self.network_ = DNANetwork(
            features.shape[1],
            self.dna_dim,
            self.hidden,
            self.image_dim if use_images else 0,
            use_attributes=self.use_attributes,
        )
        self._features, self._images = features, images
        customer, article, week = history.pairs()
        self.sampler_ = OnSaleSampler(history.article, history.week, history.n_articles)
        train_rows = self._training_customers(customer, history.n_customers)
        self.train_customers_ = history.customer_ids[train_rows]
        # training: the network and the styles of the training customers
        style_table = RowAdagradTable(
            torch.zeros(history.n_customers, self.dna_dim + 1), self.style_lr
        )
        in_train = np.zeros(history.n_customers, dtype=bool)
        in_train[train_rows] = True
        keep = in_train[customer]
        network = self.network_

        if images is not None:
            # a cache of the CNN's output per article: each batch re-encodes (with gradients) only
            # image_batch of its articles and reads the rest from the cache, which keeps the CNN's
            # cost per batch fixed instead of growing with the thousands of articles a batch touches
            with torch.no_grad():
                image_cache = network.images(images)  # (n_articles, image_dim)

        def logits_fn(c: torch.Tensor, a: torch.Tensor):
            unique, inverse = torch.unique(a, return_inverse=True)  # articles of this batch only
            image_features = None
            if images is not None:
                pick = torch.randperm(len(unique), generator=generator)[: self.image_batch]
                fresh = network.images(images[unique[pick]])  # (image_batch, image_dim)
                image_cache[unique[pick]] = fresh.detach()
                image_features = image_cache[unique].index_put((pick,), fresh)  # (U, image_dim)
            attributes = features[unique] if self.use_attributes else None  # (U, F)
            dna, bias = network(attributes, image_features=image_features)
            s = style_table(c)  # (B, D + 1)
            logits = purchase_logits(s[:, :-1], dna[inverse], bias[inverse], s[:, -1])  # (B, 1 + k)
            return logits, self.l2 * (s[:, :-1] ** 2).sum()

        self.network_.train()
        self.losses_ = train_sampled_logistic(
            logits_fn,
            list(network.parameters()),
            [style_table],
            customer[keep],
            article[keep],
            week[keep],
            self.sampler_,
            epochs=self.epochs,
            batch_size=self.batch_size,
            n_negatives=self.n_negatives,
            lr=self.lr,
            generator=generator,
            progress=self.progress,
            desc="FashionDNA network",
            by_week=False,
        )
        self.steps_ = len(self.losses_) * -(-int(keep.sum()) // self.batch_size)
        self.network_.eval()
        with torch.no_grad():
            self.dna_, self.article_bias_ = network(
                features, images
            )  # (n_articles, D), (n_articles,)
        self.style_ = style_table.weight  # (n_customers, D + 1): style | bias
        # everyone else: styles from their purchases, the network frozen
        others = np.flatnonzero(~in_train)
        self.style_losses_ = self._fit_styles(
            others, customer, article, week, self.sampler_, generator
        )

    def _training_customers(self, customer: np.ndarray, n_customers: int) -> np.ndarray:
        counts = np.bincount(customer, minlength=n_customers)
        eligible = np.flatnonzero(counts >= self.min_purchases)
        if not len(eligible):
            eligible = np.flatnonzero(counts > 0)
        if self.n_train_customers is None or self.n_train_customers >= len(eligible):
            return eligible
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(eligible, self.n_train_customers, replace=False))

    def _fit_styles(
        self,
        rows: np.ndarray,
        customer: np.ndarray,
        article: np.ndarray,
        week: np.ndarray,
        sampler: OnSaleSampler,
        generator: torch.Generator,
    ) -> list[float]:
        """Fit ``style_`` for the customer ``rows`` from their pairs, DNA and biases frozen."""
        self.style_[torch.from_numpy(rows)] = 0.0
        table = RowAdagradTable(self.style_, self.style_lr)
        table.accumulator[torch.from_numpy(rows)] = 0.0
        selected = np.zeros(len(self.style_), dtype=bool)
        selected[rows] = True
        keep = selected[customer]
        dna, bias = self.dna_, self.article_bias_

        def logits_fn(c: torch.Tensor, a: torch.Tensor):
            s = table(c)  # (B, D + 1)
            logits = purchase_logits(s[:, :-1], dna[a], bias[a], s[:, -1])  # (B, 1 + k)
            return logits, self.l2 * (s[:, :-1] ** 2).sum()

        return train_sampled_logistic(
            logits_fn,
            [],
            [table],
            customer[keep],
            article[keep],
            week[keep],
            sampler,
            epochs=self.style_epochs,
            batch_size=4 * self.batch_size,
            n_negatives=self.n_negatives,
            lr=self.lr,
            generator=generator,
            progress=self.progress,
            desc="FashionDNA styles",
        )

    def fit_customers(self, data: SalesData, customers: Any, until: Any = None) -> FashionDNA:
        """(Re)fit the styles of ``customers`` from their purchases in ``data`` before ``until``
        (default: this model's cutoff) without touching the network; returns self."""
        history = self._fitted()
        until = history.until if until is None else until
        new = History.from_data(data, until)
        if not np.array_equal(new.article_ids, history.article_ids):
            raise ValueError(
                "data has a different articles table than the one the model was fitted on"
            )
        if not np.array_equal(new.customer_ids, history.customer_ids):
            raise ValueError(
                "data has a different customers table than the one the model was fitted on"
            )
        rows = rows_of(new.customer_ids, customers, "customers")
        customer, article, week = new.pairs()
        sampler = OnSaleSampler(new.article, new.week, new.n_articles)
        generator = torch.Generator().manual_seed(self.random_state + 1)
        self._fit_styles(rows, customer, article, week, sampler, generator)
        return self

    # ------------------------------------------------------------------ scoring and DNA space
    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        c, a = torch.from_numpy(customer_rows), torch.from_numpy(article_rows)
        s = self.style_[c]  # (n_customers, D + 1)
        return purchase_logits(s[:, :-1], self.dna_[a], self.article_bias_[a], s[:, -1]).numpy()

    def dna(self, articles: Any) -> np.ndarray:
        """Float32 (n_articles, D) DNA of the given article ids (any article, sold or not)."""
        rows = rows_of(self._fitted().article_ids, articles, "articles")
        return self.dna_[torch.from_numpy(rows)].numpy()

    def styles(self, customers: Any) -> np.ndarray:
        """Float32 (n_customers, D) style vectors (zero for customers without purchases)."""
        rows = rows_of(self._fitted().customer_ids, customers, "customers")
        return self.style_[torch.from_numpy(rows), :-1].numpy()

    def encode(self, articles_table: Any, images: np.ndarray | None = None) -> np.ndarray:
        """DNA (N, D) of articles described by an ``articles``-like table (same attribute categories
        as the fitted data) and optional uint8 images (N, H, W, 3): DNA for a catalogue never seen."""
        self._fitted()
        features = torch.from_numpy(self.encoder_.transform(articles_table))
        if self.use_attributes and features.shape[1] != self._features.shape[1]:
            raise ValueError(
                f"articles_table encodes to {features.shape[1]} one-hot slots, the model was fitted "
                f"with {self._features.shape[1]}; use the same categorical attribute categories"
            )
        image_tensor = None
        if self.network_.images is not None:
            if images is None:
                raise ValueError("this model uses images; pass images=(N, H, W, 3) uint8")
            image_tensor = images_to_tensor(images)
        with torch.no_grad():
            return self.network_(features, image_tensor)[0].numpy()

    def similar(
        self, articles: Any, n: int = 5, among: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` articles at the smallest angle to each given article: ids (int64) and angles
        (degrees), both (len(articles), n); ``among`` restricts the candidates (default all)."""
        history = self._fitted()
        rows = rows_of(history.article_ids, articles, "articles")
        pool = (
            np.arange(history.n_articles)
            if among is None
            else rows_of(history.article_ids, among, "among")
        )
        angles = angle_degrees(self.dna_[torch.from_numpy(rows)], self.dna_[torch.from_numpy(pool)])
        angles[torch.from_numpy(pool)[None, :] == torch.from_numpy(rows)[:, None]] = float("inf")
        n = min(n, len(pool))
        best = torch.topk(-angles, n, dim=1).indices  # (len(articles), n)
        return history.article_ids[pool[best.numpy()]], angles.gather(1, best).numpy()


def dna_at_cutoff(
    dna: FashionDNA | None,
    dna_params: dict[str, Any],
    history: History,
    data: SalesData,
    reader: Recommender,
) -> FashionDNA:
    """``dna`` when it was fitted with the same cutoff as ``history``, else a new :class:`FashionDNA`
    fitted with ``dna_params`` and the ``reader``'s seed: the DNA a model built on DNA reads."""
    if dna is not None and dna.history_ is not None and dna.history_.until == history.until:
        return dna
    params = {"progress": reader.progress, "random_state": reader.random_state, **dna_params}
    return FashionDNA(**params).fit(data, until=history.until)

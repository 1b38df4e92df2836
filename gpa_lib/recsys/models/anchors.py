"""What a practitioner would pick instead, through the same contract: implicit's ALS (a tuned static
collaborative filter) and LightFM with item features (the usual hybrid for cold start).

Both libraries are optional: :func:`implicit_available` / :func:`lightfm_available` (and each class's
``can_run()``) say why not when they are missing, and ``fit`` raises with the same message. Nothing
here imports them at module import time.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np
import scipy.sparse as sp
import torch

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import ColdPolicyMixin, History, Recommender
from gpa_lib.recsys.models.features import article_features


@functools.cache
def _probe(module: str, install: str) -> tuple[bool, str]:
    try:
        importlib.import_module(module)
    except Exception as error:  # ImportError, or a broken binary extension
        return False, f"cannot import {module} ({type(error).__name__}: {error}); {install}"
    return True, ""


def implicit_available() -> tuple[bool, str]:
    """(True, "") when ``implicit`` imports, else (False, what failed and how to install it)."""
    return _probe("implicit.cpu.als", "install it with `pip install implicit`")


def lightfm_available() -> tuple[bool, str]:
    """(True, "") when ``lightfm`` imports, else (False, what failed and how to install it)."""
    return _probe(
        "lightfm",
        "install it with `bash scripts/install_lightfm.sh .venv/bin/python` "
        "(the PyPI sdist does not build on Python 3.11+, see lyst/lightfm#687)",
    )


def purchase_matrix(history: History, customers: np.ndarray | None = None) -> sp.csr_matrix:
    """Binary (n_customers, n_articles) CSR matrix of purchases before the cutoff (float32);
    ``customers`` (rows) restricts it to those customers, the others stay empty."""
    customer, article, _ = history.pairs()
    if customers is not None:
        keep = np.isin(customer, customers)
        customer, article = customer[keep], article[keep]
    data = np.ones(len(customer), dtype=np.float32)
    return sp.csr_matrix(
        (data, (customer, article)), shape=(history.n_customers, history.n_articles)
    )


class _ImplicitFactorModel(ColdPolicyMixin, Recommender):
    """The implicit anchors' shared part: fit an implicit model on the purchase matrix, then score
    customers by the dot products of their factors. Subclasses build the model and read its factors.
    """

    @classmethod
    def can_run(cls) -> tuple[bool, str]:
        return implicit_available()

    def _make_model(self):
        raise NotImplementedError

    def _factors(self, model, active: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(user factors, item factors); ``active`` marks customers with a purchase before the cutoff."""
        raise NotImplementedError

    def _fit(self, history: History, data: SalesData) -> None:
        from threadpoolctl import threadpool_limits

        # implicit runs its own threads; nested BLAS threads only hurt (and it warns about them)
        with threadpool_limits(1, "blas"):
            model = self._make_model()
            model.fit(purchase_matrix(history), show_progress=self.progress)
        self.known_ = history.sold_articles()
        active = np.bincount(history.customer, minlength=history.n_customers) > 0
        self.user_factors_, self.item_factors_ = self._factors(model, active)

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        u = self.user_factors_[torch.from_numpy(customer_rows)]  # (n_customers, f)
        v = self.item_factors_[torch.from_numpy(article_rows)]  # (n_articles, f)
        return self._apply_cold((u @ v.T).numpy(), article_rows, self._fitted().article_ids)


class ImplicitALS(_ImplicitFactorModel):
    """implicit's alternating least squares on the binary purchase matrix (confidence
    ``1 + alpha``). ``factors``, ``regularization``, ``iterations`` as in implicit; ``num_threads``
    OpenMP threads. Articles nobody bought before the cutoff follow ``cold`` ("error" or "lowest",
    see :class:`~gpa_lib.recsys.models.base.ColdPolicyMixin`); customers without purchases get zero
    factors (all scores 0).
    """

    name = "implicit_als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 8,
        cold: str = "error",
        num_threads: int = 1,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        self.factors, self.regularization, self.alpha = (
            int(factors),
            float(regularization),
            float(alpha),
        )
        self.iterations, self.num_threads = int(iterations), int(num_threads)
        self.cold = self._check_cold(cold)

    def _make_model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _factors(self, model, active: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        user = torch.from_numpy(np.asarray(model.user_factors) * active[:, None])
        return user, torch.from_numpy(np.asarray(model.item_factors))


class ImplicitBPR(_ImplicitFactorModel):
    """implicit's Bayesian personalised ranking (BPR) on the binary purchase matrix. ``factors``,
    ``learning_rate``, ``regularization``, ``iterations`` as in implicit; ``num_threads`` threads.
    Articles nobody bought before the cutoff follow ``cold``; customers without purchases get zero
    factors (all scores equal, so they rank by the item bias alone).
    """

    name = "implicit_bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 50,
        cold: str = "error",
        num_threads: int = 1,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        self.factors, self.iterations = int(factors), int(iterations)
        self.learning_rate, self.regularization = float(learning_rate), float(regularization)
        self.num_threads = int(num_threads)
        self.cold = self._check_cold(cold)

    def _make_model(self):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.random_state,
        )

    def _factors(self, model, active: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        user = np.asarray(model.user_factors)  # (n_customers, factors + 1): the last column is 1
        user = np.where(active[:, None], user, np.eye(1, user.shape[1], user.shape[1] - 1))
        return torch.from_numpy(user).float(), torch.from_numpy(
            np.asarray(model.item_factors)
        ).float()


class LightFMHybrid(Recommender):
    """LightFM with item features: an identity feature per article plus the one-hot attributes, so a
    new article is scored from its attributes (its identity embedding was never trained).

    ``no_components``, ``loss`` ("warp", "bpr", "logistic"), ``learning_rate``, ``item_alpha``,
    ``max_sampled`` as in LightFM; ``epochs`` passes; ``n_train_customers`` customers (random) or all
    (``None``); ``num_threads`` > 1 makes training non-deterministic (Hogwild), so it defaults to 1.
    Customers outside the training sample or without purchases get only the item biases.
    """

    name = "lightfm"
    cold_articles = True

    def __init__(
        self,
        no_components: int = 32,
        loss: str = "warp",
        epochs: int = 3,
        learning_rate: float = 0.05,
        item_alpha: float = 1e-6,
        max_sampled: int = 10,
        n_train_customers: int | None = None,
        num_threads: int = 1,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if loss not in ("warp", "bpr", "logistic", "warp-kos"):
            raise ValueError(f"loss={loss!r} must be one of 'warp', 'bpr', 'logistic', 'warp-kos'")
        self.no_components, self.loss, self.epochs = int(no_components), loss, int(epochs)
        self.learning_rate, self.item_alpha, self.max_sampled = (
            float(learning_rate),
            float(item_alpha),
            int(max_sampled),
        )
        self.n_train_customers, self.num_threads = n_train_customers, int(num_threads)

    @classmethod
    def can_run(cls) -> tuple[bool, str]:
        return lightfm_available()

    def _fit(self, history: History, data: SalesData) -> None:
        from lightfm import LightFM

        matrix, self.encoder_ = article_features(data)
        attributes = sp.csr_matrix(matrix)
        identity = sp.identity(history.n_articles, dtype=np.float32, format="csr")
        features = sp.hstack([identity, attributes], format="csr").astype(np.float32)
        # rows sum to 1, LightFM's recommended normalisation when mixing identity and attributes
        row_sum = np.asarray(abs(features).sum(axis=1)).ravel()  # numeric features may be < 0
        self.item_features_ = sp.diags(1.0 / row_sum).astype(np.float32) @ features
        customers = None
        active = np.flatnonzero(np.bincount(history.customer, minlength=history.n_customers) > 0)
        if self.n_train_customers is not None and self.n_train_customers < len(active):
            rng = np.random.default_rng(self.random_state)
            customers = np.sort(rng.choice(active, self.n_train_customers, replace=False))
            active = customers
        interactions = purchase_matrix(history, customers).tocoo()
        model = LightFM(
            no_components=self.no_components,
            loss=self.loss,
            learning_rate=self.learning_rate,
            item_alpha=self.item_alpha,
            max_sampled=self.max_sampled,
            random_state=np.random.RandomState(self.random_state),
        )
        model.fit(
            interactions,
            item_features=self.item_features_,
            epochs=self.epochs,
            num_threads=self.num_threads,
            verbose=self.progress,
        )
        item_bias, item_embedding = model.get_item_representations(self.item_features_)
        user_bias, user_embedding = model.get_user_representations()
        trained = np.zeros(history.n_customers, dtype=bool)
        trained[active] = True
        self.item_embedding_ = torch.from_numpy(np.asarray(item_embedding, dtype=np.float32))
        self.item_bias_ = torch.from_numpy(np.asarray(item_bias, dtype=np.float32))
        self.user_embedding_ = torch.from_numpy(
            (np.asarray(user_embedding) * trained[:, None]).astype(np.float32)
        )

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        u = self.user_embedding_[torch.from_numpy(customer_rows)]  # (n_customers, f)
        a = torch.from_numpy(article_rows)
        return (u @ self.item_embedding_[a].T + self.item_bias_[a]).numpy()

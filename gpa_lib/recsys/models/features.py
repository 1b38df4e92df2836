"""Article attributes as a feature matrix, for the models that read attributes (Fashion DNA, LightFM).

Two sources of attributes:

- ``data.meta["item_attributes"]`` (the interactions format, :mod:`gpa_lib.recsys.data.interactions`):
  every listed column by its kind: ``categorical`` one-hot (+ a "missing" slot), ``multi`` and
  ``text`` multi-hot over their values or words (those on at least ``min_count`` articles, rows
  scaled to unit sum so that an article with many tags weighs as much as one with a single tag),
  ``numeric`` standardised (missing -> 0) with a "missing" flag;
- otherwise (the simulator, H&M) the fashion attributes of the data model
  (:data:`~gpa_lib.recsys.data.tables.ARTICLE_ATTRIBUTES`), one-hot, exactly as
  :func:`~gpa_lib.recsys.models.base.article_onehot` always did.

:class:`ArticleEncoder` learns the vocabularies and scales from one articles table and encodes any
table with the same columns into the same slots; ``read`` and ``unread`` list which columns it uses
and which it does not (logged at INFO when fitted, so a user sees what the model ignores).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gpa_lib.recsys.data.tables import ARTICLE_ATTRIBUTES
from gpa_lib.recsys.models.base import article_onehot

log = logging.getLogger(__name__)

#: Columns that are bookkeeping, not attributes (never listed as unread).
NOT_ATTRIBUTES = ("launch", "has_image", "item_id", "article_id")


@dataclass
class ArticleEncoder:
    """Encodes articles tables into float32 (n_articles, F) features; see the module docstring.

    ``kinds`` maps columns to kinds (``None``: the fashion attributes, one-hot); ``separator``
    splits ``multi`` values; a ``multi`` or ``text`` value must be on ``min_count`` articles of the
    fitted table to get a slot.
    """

    kinds: dict[str, str] | None = None  # column -> kind; None = the fashion one-hot
    separator: str = "|"  # between the values of a multi-valued attribute
    min_count: int = 2  # articles a tag or word needs to get a feature slot
    vocabularies: dict[str, list[str]] = field(default_factory=dict)  # learned by fit
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)  # numeric mean, std
    read: list[str] = field(default_factory=list)  # columns encoded
    unread: list[str] = field(default_factory=list)  # attribute columns left out

    @classmethod
    def for_data(cls, data: Any) -> ArticleEncoder:
        """The encoder a SalesData asks for (its ``meta["item_attributes"]`` or the fashion one-hot)."""
        kinds = data.meta.get("item_attributes")
        return cls(
            kinds=None if kinds is None else dict(kinds), separator=data.meta.get("separator", "|")
        )

    def fit(self, articles: pd.DataFrame) -> ArticleEncoder:
        if self.kinds is None:
            self.read = [
                c
                for c in ARTICLE_ATTRIBUTES
                if c in articles.columns
                and isinstance(articles[c].dtype, pd.CategoricalDtype)
                and len(articles[c].cat.categories)
            ]
        else:
            missing = [c for c in self.kinds if c not in articles.columns]
            if missing:
                raise ValueError(f"articles lacks the attribute column(s) {missing} of kinds")
            self.read = [c for c in self.kinds if not _all_missing(articles[c])]
            for column in self.read:
                kind = self.kinds[column]
                if kind in ("multi", "text"):
                    tokens = self._tokens(articles[column], kind)
                    counts = pd.Series([t for row in tokens for t in set(row)]).value_counts()
                    self.vocabularies[column] = sorted(counts.index[counts >= self.min_count])
                elif kind == "numeric":
                    values = pd.to_numeric(articles[column], errors="coerce").to_numpy(float)
                    finite = values[np.isfinite(values)]
                    std = float(finite.std()) if len(finite) else 0.0
                    self.scales[column] = (
                        float(finite.mean()) if len(finite) else 0.0,
                        std if std > 0 else 1.0,
                    )
                elif kind == "categorical":
                    values = articles[column].astype("category")
                    self.vocabularies[column] = [str(v) for v in values.cat.categories]
                else:
                    raise ValueError(f"kinds[{column!r}]={kind!r} is not a known attribute kind")
        self.unread = [
            c
            for c in articles.columns
            if c not in self.read and c not in NOT_ATTRIBUTES and not _all_missing(articles[c])
        ]
        log.info(
            "article features read %s; not read: %s",
            self.read or "nothing",
            self.unread or "nothing",
        )
        return self

    def transform(self, articles: pd.DataFrame) -> np.ndarray:
        """Float32 (n_articles, F) features of ``articles`` in the slots learned by :meth:`fit`."""
        if self.kinds is None:
            return article_onehot(articles)
        blocks = []
        n = len(articles)
        for column in self.read:
            kind = self.kinds[column]
            if kind == "numeric":
                mean, std = self.scales[column]
                values = pd.to_numeric(articles[column], errors="coerce").to_numpy(float)
                missing = ~np.isfinite(values)
                scaled = np.where(missing, 0.0, (values - mean) / std)
                blocks.append(np.stack([scaled, missing.astype(float)], axis=1))
            elif kind == "categorical":
                vocabulary = self.vocabularies[column]
                strings = [None if pd.isna(v) else str(v) for v in articles[column].astype(object)]
                codes = pd.Categorical(strings, categories=vocabulary).codes
                block = np.zeros((n, len(vocabulary) + 1))
                block[np.arange(n), np.where(codes < 0, len(vocabulary), codes)] = 1.0
                blocks.append(block)
            else:
                vocabulary = self.vocabularies[column]
                slot = {token: i for i, token in enumerate(vocabulary)}
                block = np.zeros((n, len(vocabulary) + 1))
                for row, tokens in enumerate(self._tokens(articles[column], kind)):
                    hits = [slot[t] for t in set(tokens) if t in slot]
                    if hits:
                        block[row, hits] = 1.0 / len(hits)
                    else:
                        block[row, -1] = 1.0  # no known value
                blocks.append(block)
        if not blocks:
            return np.ones((n, 1), dtype=np.float32)
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def _tokens(self, values: pd.Series, kind: str) -> list[list[str]]:
        from gpa_lib.recsys.data.interactions import split_values

        text = values.astype(object).where(values.notna(), "").astype(str)
        return split_values(text, kind, self.separator)


def _all_missing(column: pd.Series) -> bool:
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        return bool((column.isna() | (column.astype(str).str.strip() == "")).all())
    return bool(column.isna().all())


def article_features(data: Any) -> tuple[np.ndarray, ArticleEncoder]:
    """Float32 (n_articles, F) features of ``data.articles`` and the fitted encoder."""
    encoder = ArticleEncoder.for_data(data).fit(data.articles)
    return encoder.transform(data.articles), encoder

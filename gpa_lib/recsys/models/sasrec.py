"""SASRec (Kang & McAuley 2018): causal self-attention over a customer's purchase sequence, trained
with full cross-entropy over the catalogue (as Klenitskiy & Vasilev 2023 found to beat BERT4Rec).

A modern sequential anchor behind the same contract as the LSTM. Each purchase (distinct articles in
day order, the last ``max_len``) is one token: a learned article embedding plus a learned position;
a start token comes first, so a customer without purchases gets the start token's output. The
score of article ``a`` after the sequence is ``h . E_a + b_a`` with the same embeddings ``E`` as the
input (weight tying). Articles nobody bought before the cutoff have untrained embeddings: they follow
the ``cold`` policy (``"lowest"``: ranked last, tied).

The cross-entropy is over all articles on sale in the week of the predicted purchase (those sold
that week; ``softmax="on_sale"``, the default), or over the whole catalogue (``"catalogue"``, as
the original). In fashion, where an article sells for a few weeks, the catalogue softmax spends
the model on learning which articles were on sale when, the same reason the other models draw
their negatives among the articles on sale (:class:`~gpa_lib.recsys.models.training.OnSaleSampler`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gpa_lib.recsys.data.sales import SalesData
from gpa_lib.recsys.models.base import ColdPolicyMixin, History, Recommender
from gpa_lib.recsys.models.training import linear_cross_entropy, step_budget

#: What the training softmax runs over (see the module docstring).
SOFTMAX = ("on_sale", "catalogue")


class SASRecNetwork(nn.Module):
    """(B, N) article tokens (0 = padding, 1 = start, 2 + row = article) -> (B, N, C) states."""

    def __init__(
        self, n_articles: int, hidden: int, max_len: int, layers: int, heads: int, dropout: float
    ):
        super().__init__()
        self.embed = nn.Embedding(n_articles + 2, hidden, padding_idx=0)
        self.position = nn.Embedding(max_len + 1, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 2 * hidden, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.article_bias = nn.Parameter(torch.zeros(n_articles))
        self.dropout = nn.Dropout(dropout)
        # Small embeddings (as SASRec's implementations): with the default N(0, 1) the tied scores
        # h . E start with a spread of about sqrt(hidden) and the first epochs only undo it.
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[0] = 0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.embed(tokens) + self.position(torch.arange(n))[None]  # (B, N, C)
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)  # (N, N) True = hidden
        out = self.encoder(self.dropout(x), mask=causal, src_key_padding_mask=tokens == 0)
        return self.norm(out)  # (B, N, C)

    def logits(self, states: torch.Tensor, articles: torch.Tensor | None = None) -> torch.Tensor:
        """(..., C) states -> (..., n_articles) (or the given article rows) scores."""
        weight = self.embed.weight[2:] if articles is None else self.embed.weight[2 + articles]
        bias = self.article_bias if articles is None else self.article_bias[articles]
        return states @ weight.T + bias


class SASRec(ColdPolicyMixin, Recommender):
    """SASRec with ``hidden`` units (C), ``layers`` blocks of ``heads`` heads, the last ``max_len``
    purchases; ``epochs`` passes over the customers with at least one purchase (at most
    ``n_train_customers``, a seeded sample) in batches of ``batch_customers``, Adam ``lr``,
    ``dropout``; every position predicts the next purchase with cross-entropy over the articles of
    ``softmax`` (``"on_sale"``: those sold in the purchase's week; ``"catalogue"``: all).
    ``steps`` (when given) replaces ``epochs`` by a budget of exactly that many Adam steps
    (``steps_`` records the steps taken either way)."""

    name = "sasrec"

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 1,
        max_len: int = 30,
        epochs: int = 4,
        batch_customers: int = 128,
        lr: float = 1e-3,
        dropout: float = 0.2,
        n_train_customers: int | None = None,
        softmax: str = "on_sale",
        cold: str = "error",
        steps: int | None = None,
        *,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(random_state=random_state, progress=progress)
        if hidden < 1 or layers < 1 or heads < 1 or max_len < 1 or batch_customers < 1:
            raise ValueError(
                f"hidden={hidden}, layers={layers}, heads={heads}, max_len={max_len}, "
                f"batch_customers={batch_customers} must all be >= 1"
            )
        if softmax not in SOFTMAX:
            raise ValueError(f"softmax={softmax!r} is not one of {SOFTMAX}")
        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be a multiple of heads={heads}")
        self.hidden, self.layers, self.heads, self.max_len = (
            int(hidden),
            int(layers),
            int(heads),
            int(max_len),
        )
        self.epochs, self.batch_customers, self.lr = int(epochs), int(batch_customers), float(lr)
        self.dropout, self.n_train_customers = float(dropout), n_train_customers
        self.softmax = softmax
        self.cold = self._check_cold(cold)
        if steps is not None and steps < 1:
            raise ValueError(f"steps={steps} must be >= 1 or None (then epochs={epochs} counts)")
        self.steps = None if steps is None else int(steps)

    def _sequences(self, history: History) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_customers, max_len + 1) tokens: start, then the last distinct purchases, padded after;
        and the same shape of weeks before the cutoff of each purchase (0 at start and padding)."""
        sort = np.lexsort((history.order, history.day, history.customer))
        customer, article = history.customer[sort], history.article[sort]
        week = history.week[sort]
        key = customer * history.n_articles + article
        _, first = np.unique(
            key, return_index=True
        )  # the first purchase of each (customer, article)
        first = np.sort(first)
        customer, article, week = customer[first], article[first], week[first]
        starts = np.searchsorted(customer, np.arange(history.n_customers + 1))
        tokens = np.zeros((history.n_customers, self.max_len + 1), dtype=np.int64)
        weeks = np.zeros_like(tokens)
        tokens[:, 0] = 1
        lengths = np.minimum(np.diff(starts), self.max_len)
        for c in np.flatnonzero(lengths):
            last = slice(starts[c + 1] - lengths[c], starts[c + 1])
            tokens[c, 1 : 1 + lengths[c]] = 2 + article[last]
            weeks[c, 1 : 1 + lengths[c]] = week[last]
        self.lengths_ = lengths
        return torch.from_numpy(tokens), torch.from_numpy(weeks)

    def _fit(self, history: History, data: SalesData) -> None:
        torch.manual_seed(self.random_state)
        generator = torch.Generator().manual_seed(self.random_state)
        tokens, weeks = self._sequences(history)  # (n_customers, N + 1) each
        on_sale = None  # (n_weeks, A) bool: sold in that week (weeks before the cutoff)
        if self.softmax == "on_sale":
            on_sale = torch.zeros(int(history.week.max()) + 1, history.n_articles, dtype=torch.bool)
            on_sale[torch.from_numpy(history.week), torch.from_numpy(history.article)] = True
        self.network_ = network = SASRecNetwork(
            history.n_articles, self.hidden, self.max_len, self.layers, self.heads, self.dropout
        )
        train = np.flatnonzero(self.lengths_ >= 1)
        if self.n_train_customers is not None and self.n_train_customers < len(train):
            rng = np.random.default_rng(self.random_state)
            train = np.sort(rng.choice(train, self.n_train_customers, replace=False))
        optimizer = torch.optim.Adam(network.parameters(), lr=self.lr)
        self.losses_ = []
        network.train()
        n_batches = -(-len(train) // self.batch_customers)
        epochs, budget = step_budget(n_batches, self.epochs, self.steps)
        self.steps_ = 0
        for _ in range(epochs):
            total, count = 0.0, 0
            perm = torch.from_numpy(train)[torch.randperm(len(train), generator=generator)]
            for batch in perm.split(self.batch_customers):
                if self.steps_ >= budget:
                    break
                n = int(self.lengths_[batch.numpy()].max()) + 1
                seq = tokens[batch, :n]  # (B, N): inputs seq[:, :-1], targets seq[:, 1:]
                states = network(seq[:, :-1])  # (B, N - 1, C)
                target = seq[:, 1:]
                valid = target >= 2
                loss = linear_cross_entropy(  # full softmax, the (M, A) logits in chunks
                    states[valid],
                    network.embed.weight[2:],
                    network.article_bias,
                    target[valid] - 2,
                    allowed=on_sale,
                    group=None if on_sale is None else weeks[batch, 1:n][valid],
                )
                optimizer.zero_grad(set_to_none=True)
                (loss / int(valid.sum())).backward()
                optimizer.step()
                total, count = total + float(loss.detach()), count + int(valid.sum())
                self.steps_ += 1
            self.losses_.append(total / max(count, 1))
        network.eval()
        with torch.no_grad():  # the state after each customer's last purchase (or the start token)
            last = torch.from_numpy(self.lengths_)
            states = [
                network(tokens[rows, : int(last[rows].max()) + 1])[
                    torch.arange(len(rows)), last[rows]
                ]
                for rows in torch.arange(history.n_customers).split(4096)
            ]
        self.state_ = (
            torch.cat(states) if states else torch.zeros(0, self.hidden)
        )  # (n_customers, C)
        self.known_ = history.sold_articles()

    def _score(self, customer_rows: np.ndarray, article_rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            scores = self.network_.logits(
                self.state_[torch.from_numpy(customer_rows)], torch.from_numpy(article_rows)
            ).numpy()
        return self._apply_cold(scores, article_rows, self._fitted().article_ids)


class CatalogueSASRec(SASRec):
    """:class:`SASRec` with ``softmax="catalogue"``: the original objective, a softmax over every
    article of the catalogue at every position (the control of the on-sale softmax)."""

    name = "sasrec_catalogue"

    def __init__(self, *args, softmax: str = "catalogue", **kwargs) -> None:
        super().__init__(*args, softmax=softmax, **kwargs)

"""Named parameter sets for every model, one dict per profile, and the factories a backtest runs.

``full`` is what the book uses on a 2-core CPU (100,000 customers, 104 weeks); ``smoke`` is for
seconds-long runs on tiny stores. Change a model's settings here, not in the notebooks.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from gpa_lib.recsys.models.ablation import ContextPopularity, PaperLSTM, StaticCFDNAFallback
from gpa_lib.recsys.models.anchors import ImplicitALS, ImplicitBPR, LightFMHybrid
from gpa_lib.recsys.models.base import Recommender
from gpa_lib.recsys.models.fashion_dna import FashionDNA
from gpa_lib.recsys.models.lstm import LSTMCustomerModel
from gpa_lib.recsys.models.popularity import Popularity
from gpa_lib.recsys.models.sasrec import CatalogueSASRec, SASRec
from gpa_lib.recsys.models.static_cf import StaticCF

MODEL_CLASSES: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "static_cf": StaticCF,
    "implicit_als": ImplicitALS,
    "implicit_bpr": ImplicitBPR,
    "lightfm": LightFMHybrid,
    "fashion_dna": FashionDNA,
    "lstm": LSTMCustomerModel,
    "sasrec": SASRec,
    # the controls of the LSTM ablation (gpa_lib.recsys.models.ablation)
    "lstm_paper": PaperLSTM,
    "context_popularity": ContextPopularity,
    "static_cf_dna": StaticCFDNAFallback,
    # the control of SASRec's on-sale softmax
    "sasrec_catalogue": CatalogueSASRec,
}
#: Models that read the Fashion DNA fitted at the same cutoff (fitted after ``fashion_dna``).
DNA_READERS = ("lstm", "lstm_paper", "context_popularity", "static_cf_dna")

MODEL_PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "popularity": {"window_days": 7},
        "static_cf": {"factors": 16, "epochs": 6, "l2": 1e-3, "lr": 0.3, "cold": "lowest"},
        "implicit_als": {
            "factors": 32,
            "regularization": 1.0,
            "alpha": 2.0,
            "iterations": 8,
            "cold": "lowest",
            "num_threads": 1,
        },
        "implicit_bpr": {
            "factors": 32,
            "learning_rate": 0.01,
            "regularization": 0.01,
            "iterations": 50,
            "cold": "lowest",
            "num_threads": 1,
        },
        "lightfm": {"no_components": 32, "loss": "warp", "epochs": 3, "num_threads": 1},
        "fashion_dna": {"dna_dim": 32, "hidden": 0, "image_dim": 0, "n_train_customers": 20_000},
        "lstm": {
            "hidden": 48,
            "max_orders": 12,
            "n_train_customers": None,
            "epochs": 3,
            "lr": 1e-2,
        },
        "lstm_paper": {
            "hidden": 48,
            "max_orders": 12,
            "n_train_customers": None,
            "epochs": 3,
            "lr": 1e-2,
        },
        "sasrec": {
            "hidden": 64,
            "layers": 2,
            "max_len": 30,
            "epochs": 4,
            "lr": 1e-3,
            "cold": "lowest",
            "softmax": "on_sale",
        },
        "context_popularity": {"epochs": 2, "max_iter": 50, "max_items": 200_000},
        "static_cf_dna": {"factors": 16, "epochs": 6, "l2": 1e-3, "lr": 0.3, "ridge": 1.0},
    },
    "smoke": {
        "popularity": {"window_days": 7},
        "static_cf": {"factors": 8, "epochs": 3, "l2": 1e-3, "lr": 0.3, "cold": "lowest"},
        "implicit_als": {
            "factors": 8,
            "regularization": 1.0,
            "alpha": 2.0,
            "iterations": 3,
            "cold": "lowest",
            "num_threads": 1,
        },
        "implicit_bpr": {
            "factors": 8,
            "learning_rate": 0.01,
            "regularization": 0.01,
            "iterations": 10,
            "cold": "lowest",
            "num_threads": 1,
        },
        "lightfm": {"no_components": 8, "loss": "warp", "epochs": 2, "num_threads": 1},
        "fashion_dna": {
            "dna_dim": 16,
            "hidden": 0,
            "image_dim": 0,
            "n_train_customers": 1_000,
            "epochs": 3,
            "style_epochs": 2,
        },
        "lstm": {
            "hidden": 16,
            "max_orders": 8,
            "n_train_customers": 1_000,
            "epochs": 2,
            "lr": 1e-2,
        },
        "lstm_paper": {
            "hidden": 16,
            "max_orders": 8,
            "n_train_customers": 1_000,
            "epochs": 2,
            "lr": 1e-2,
        },
        "sasrec": {
            "hidden": 16,
            "layers": 1,
            "max_len": 10,
            "epochs": 2,
            "lr": 3e-3,
            "cold": "lowest",
            "softmax": "on_sale",
        },
        "context_popularity": {"epochs": 1, "max_iter": 20, "max_items": 20_000},
        "static_cf_dna": {"factors": 8, "epochs": 3, "l2": 1e-3, "lr": 0.3, "ridge": 1.0},
    },
}
for _params in MODEL_PARAMS.values():  # the control: SASRec's settings, the original's softmax
    _params["sasrec_catalogue"] = {**_params["sasrec"], "softmax": "catalogue"}
PROFILES = tuple(MODEL_PARAMS)


def make_model(
    name: str,
    profile: str = "full",
    *,
    random_state: int = 0,
    progress: bool = False,
    **overrides: Any,
) -> Recommender:
    """A new, unfitted model ``name`` with the ``profile`` settings, overridden by ``overrides``.

    ``cold_customers`` among the overrides sets the shared rule for customers without purchases
    (:meth:`~gpa_lib.recsys.models.base.Recommender.set_cold_customers`); an override the model
    does not take is a ``TypeError`` naming it and the model's parameters."""
    check_model_names([name])
    if profile not in MODEL_PARAMS:
        raise ValueError(f"profile={profile!r} is not one of {PROFILES}")
    params = {**MODEL_PARAMS[profile][name], **overrides}
    cold_customers = params.pop("cold_customers", None)
    cls = MODEL_CLASSES[name]
    accepted = model_parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"model {name!r} ({cls.__name__}) takes no parameter(s) {unknown}; it takes "
            f"{sorted(accepted)} and cold_customers"
        )
    model = cls(**params, random_state=random_state, progress=progress)
    if cold_customers is not None:
        model.set_cold_customers(cold_customers)
    return model


def model_parameters(name: str) -> dict[str, Any]:
    """``{parameter: default}`` of model ``name``'s constructor (``random_state``, ``progress`` and
    ``*args``/``**kwargs`` left out)."""
    check_model_names([name])
    cls = MODEL_CLASSES[name]
    out = {}
    for klass in cls.__mro__:  # a subclass passing **kwargs on (CatalogueSASRec) takes its parent's
        if "__init__" not in vars(klass):
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name in ("self", "random_state", "progress") or p.kind in (
                p.VAR_POSITIONAL,
                p.VAR_KEYWORD,
            ):
                continue
            out.setdefault(p.name, p.default)
        if not any(
            p.kind == p.VAR_KEYWORD for p in inspect.signature(klass.__init__).parameters.values()
        ):
            break
    return out


def check_model_names(names: Any) -> list[str]:
    """``names`` as a list, or a ``ValueError`` naming each unknown one with the closest model."""
    names = list(names)
    unknown = [n for n in names if n not in MODEL_CLASSES]
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(str(n), list(MODEL_CLASSES), n=1)
            hints.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"unknown model name(s) {', '.join(hints)}: not one of {sorted(MODEL_CLASSES)}"
        )
    return names


def model_factories(
    names: tuple[str, ...] | None = None,
    profile: str = "full",
    *,
    random_state: int = 0,
    progress: bool = False,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``{name: factory}`` for :func:`gpa_lib.recsys.eval.backtest.run_backtest`, in dependency order;
    the models of :data:`DNA_READERS` reuse the FashionDNA fitted at the same cutoff when that is
    in ``names`` (else they fit their own with the ``fashion_dna`` settings and overrides)."""
    names = tuple(MODEL_CLASSES) if names is None else tuple(check_model_names(names))
    overrides = overrides or {}
    if "fashion_dna" in names:  # fit the DNA first so that the models reading it reuse it
        names = tuple(n for n in names if n not in DNA_READERS) + tuple(
            n for n in names if n in DNA_READERS
        )

    def factory(name: str):
        def build(fitted: dict[str, Recommender]) -> Recommender:
            extra = dict(overrides.get(name, {}))
            if name in DNA_READERS:
                extra.setdefault("dna", fitted.get("fashion_dna"))
                dna_params = {
                    **MODEL_PARAMS[profile]["fashion_dna"],
                    **overrides.get("fashion_dna", {}),
                }
                dna_params.pop("cold_customers", None)  # the DNA inside scores no customer
                extra.setdefault("dna_params", dna_params)
            return make_model(name, profile, random_state=random_state, progress=progress, **extra)

        return build

    return {name: factory(name) for name in names}

"""Recommenders behind one contract (see :mod:`gpa_lib.recsys.models.base`).

- :class:`Popularity`: recent sales; :class:`StaticCF`: logistic matrix factorisation;
- :class:`FashionDNA`: attributes (+ image) -> DNA, customer styles, cold start;
- :class:`LSTMCustomerModel`: the dynamic customer model in DNA space;
- :class:`SASRec`: self-attention over the purchase sequence (a modern sequential anchor);
- :mod:`~gpa_lib.recsys.models.ablation`: the LSTM's controls (:class:`PaperLSTM`,
  :class:`ContextPopularity`, :class:`StaticCFDNAFallback`);
- anchors :class:`ImplicitALS`, :class:`ImplicitBPR` and :class:`LightFMHybrid` (optional libraries, ``can_run()``);
- :mod:`~gpa_lib.recsys.models.presets`: named settings per profile and backtest factories.
"""

from gpa_lib.recsys.models.ablation import ContextPopularity, PaperLSTM, StaticCFDNAFallback
from gpa_lib.recsys.models.anchors import (
    ImplicitALS,
    ImplicitBPR,
    LightFMHybrid,
    implicit_available,
    lightfm_available,
)
from gpa_lib.recsys.models.base import History, Recommender
from gpa_lib.recsys.models.fashion_dna import FashionDNA
from gpa_lib.recsys.models.lstm import LSTMCustomerModel
from gpa_lib.recsys.models.popularity import Popularity
from gpa_lib.recsys.models.presets import MODEL_CLASSES, MODEL_PARAMS, make_model, model_factories
from gpa_lib.recsys.models.sasrec import SASRec
from gpa_lib.recsys.models.static_cf import StaticCF

__all__ = [
    "MODEL_CLASSES",
    "MODEL_PARAMS",
    "ContextPopularity",
    "PaperLSTM",
    "SASRec",
    "StaticCFDNAFallback",
    "FashionDNA",
    "History",
    "ImplicitALS",
    "ImplicitBPR",
    "LSTMCustomerModel",
    "LightFMHybrid",
    "Popularity",
    "Recommender",
    "StaticCF",
    "implicit_available",
    "lightfm_available",
    "make_model",
    "model_factories",
]

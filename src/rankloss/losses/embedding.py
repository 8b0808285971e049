"""Embedding-loss modules (contrastive, triplet, InfoNCE, ...), registered in family "embedding".

Each module holds hyper-parameters and calls its function in
:mod:`rankloss.functional.embedding`; both input forms work:
``module(embeddings, labels)`` and ``module(queries, keys)``. ``InfoNCELoss`` and ``NTXentLoss``
also take ``learnable_temperature=True``, which makes the temperature an ``nn.Parameter``
(stored as its logarithm, initialised at ``temperature``).

Losses built on pairs or triplets take ``miner=`` (a name of :func:`rankloss.mining.available`
or a miner object): ``rankloss.losses.get("triplet", margin=0.2, miner="batch_hard")``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from rankloss import functional as F
from rankloss.losses import LOSSES, register_loss
from rankloss.losses.base import LossModule, loss_module

__all__ = [
    "ContrastiveLoss",
    "TripletLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "SupConLoss",
    "MultiSimilarityLoss",
    "CircleLoss",
    "MarginRankingLoss",
]


def _learnable_temperature_module(function: Callable[..., Tensor], class_name: str) -> type:
    base = loss_module(function, class_name)

    def __init__(self, *, learnable_temperature: bool = False, **hyper: Any) -> None:
        LossModule.__init__(self, **hyper)
        self.learnable_temperature = bool(learnable_temperature)
        if self.learnable_temperature:
            start = hyper.get("temperature", type(self).hyper_parameters()["temperature"])
            self.log_temperature = nn.Parameter(torch.tensor(math.log(float(start))))

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        if not self.learnable_temperature:
            return LossModule.forward(self, *args, **kwargs)
        if "temperature" in kwargs:
            raise TypeError(f"{class_name}: 'temperature' is a hyper-parameter")
        hyper = dict(self.hyper, temperature=self.log_temperature.exp())
        return type(self).function(*args, **kwargs, **hyper)

    def extra_repr(self) -> str:
        text = LossModule.extra_repr(self)
        if not self.learnable_temperature:
            return text
        return f"{text}, learnable_temperature=True" if text else "learnable_temperature=True"

    cls = type(
        class_name,
        (base,),
        {
            "__init__": __init__,
            "forward": forward,
            "extra_repr": extra_repr,
            "__doc__": base.__doc__
            + "\n\nlearnable_temperature=True makes the temperature an nn.Parameter.",
        },
    )
    cls.__module__ = "rankloss.losses"
    signature = inspect.signature(base.__init__)
    extra = inspect.Parameter(
        "learnable_temperature", inspect.Parameter.KEYWORD_ONLY, default=False
    )
    params = list(signature.parameters.values())
    cls.__init__.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params + [extra]
    )
    return cls


def _register_learnable(name: str, function: Callable[..., Tensor], class_name: str) -> type:
    cls = _learnable_temperature_module(function, class_name)
    cls.registered_name = name
    return LOSSES.register(name, cls, family="embedding", function=function)


ContrastiveLoss = register_loss("contrastive", F.contrastive_loss, "ContrastiveLoss", "embedding")
TripletLoss = register_loss("triplet", F.triplet_loss, "TripletLoss", "embedding")
InfoNCELoss = _register_learnable("info_nce", F.info_nce_loss, "InfoNCELoss")
NTXentLoss = _register_learnable("nt_xent", F.nt_xent_loss, "NTXentLoss")
SupConLoss = register_loss("supcon", F.supcon_loss, "SupConLoss", "embedding")
MultiSimilarityLoss = register_loss(
    "multi_similarity", F.multi_similarity_loss, "MultiSimilarityLoss", "embedding"
)
CircleLoss = register_loss("circle", F.circle_loss, "CircleLoss", "embedding")
MarginRankingLoss = register_loss(
    "margin_ranking", F.margin_ranking_loss, "MarginRankingLoss", "embedding"
)

"""The loss modules' constructors are typed: a wrong hyper-parameter is a type-checker error.

``make lint`` runs mypy over this file with ``warn_unused_ignores``: each ``type: ignore[...]``
below must silence a real error, so if the type checker stopped seeing a misspelt or mistyped
hyper-parameter, the unused ignore would fail the build. At run time the same calls raise.
"""

from __future__ import annotations

import pytest
import torch

from rankloss.losses import InfoNCELoss, LambdaLoss, ListLoss, RankNetLoss, TripletLoss


def test_a_misspelt_hyper_parameter_fails_at_run_time_too() -> None:
    with pytest.raises(TypeError):
        RankNetLoss(sigma=2.0, bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        TripletLoss(margn=0.2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        LambdaLoss(sigma="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RankNetLoss(2.0)  # type: ignore[call-arg]


def test_forward_is_typed() -> None:
    loss: ListLoss = RankNetLoss(sigma=2.0)
    value: torch.Tensor = loss(torch.zeros(2, 3), torch.zeros(2, 3))
    assert value.shape == ()
    queries, keys = torch.randn(4, 8), torch.randn(4, 8)
    assert InfoNCELoss(temperature=0.1)(queries, keys=keys).shape == ()

"""One DDP step with learnable loss parameters equals one process's step on the global batch.

Model parameters get DDP's averaged gradient; the loss's own parameters (a learnable
temperature, SigLIP's scale and bias) are averaged by hand, as the trainer does. Both modes of
``DistributedLoss`` must then give exactly the single-process update (float64).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from rankloss.distributed import DistributedLoss
from rankloss.losses import InfoNCELoss, SigLIPLoss
from tests.distributed._spawn import run_on_ranks

LR = 0.5


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    inputs = torch.randn(12, 6, generator=g, dtype=torch.float64)
    keys = torch.randn(12, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4])
    return inputs, keys, labels


def _build(kind: str) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = nn.Linear(6, 4).double()
    loss: nn.Module = (
        InfoNCELoss(temperature=0.2, learnable_temperature=True)
        if kind == "info_nce"
        else SigLIPLoss(learnable=True)
    ).double()
    return model, loss


def _call(loss: nn.Module, model: nn.Module, kind: str, rows: slice) -> torch.Tensor:
    inputs, keys, labels = _data()
    if kind == "info_nce":
        return loss(model(inputs[rows]), keys=model(keys[rows]))
    return loss(model(inputs[rows]), labels[rows])


def _step(model: nn.Module, loss: nn.Module, value: torch.Tensor) -> dict[str, torch.Tensor]:
    value.backward()
    with torch.no_grad():
        for p in [*model.parameters(), *loss.parameters()]:
            p -= LR * p.grad
    state = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    state.update({f"loss.{k}": v.detach().clone() for k, v in loss.named_parameters()})
    return state


def _one_process(kind: str) -> dict[str, torch.Tensor]:
    model, loss = _build(kind)
    return _step(model, loss, _call(loss, model, kind, slice(None)))


def _one_rank_step(rank: int, world_size: int, kind: str, mode: str) -> dict[str, Any]:
    model, loss = _build(kind)
    ddp = nn.parallel.DistributedDataParallel(model)
    wrapped = DistributedLoss(loss, mode=mode)
    rows = slice(6 * rank, 6 * rank + 6)
    value = _call(wrapped, ddp, kind, rows)
    value.backward()
    for p in loss.parameters():  # DDP averages the model's gradients; the loss's by hand
        dist.all_reduce(p.grad)
        p.grad /= world_size
    with torch.no_grad():
        for p in [*model.parameters(), *loss.parameters()]:
            p -= LR * p.grad
    state = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    state.update({f"loss.{k}": v.detach().clone() for k, v in loss.named_parameters()})
    return state


CASES = [(kind, mode) for kind in ("info_nce", "siglip") for mode in ("global", "local")]


def _ranks(rank: int, world_size: int) -> dict[tuple[str, str], dict[str, Any]]:
    return {case: _one_rank_step(rank, world_size, *case) for case in CASES}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[tuple[str, str], Any]]:
    return run_on_ranks(_ranks, tmp_path_factory.mktemp("ddp"))


@pytest.mark.parametrize(("kind", "mode"), CASES)
def test_one_ddp_step_equals_one_process(results, kind: str, mode: str) -> None:
    expected = _one_process(kind)
    assert any(k.startswith("loss.") for k in expected), "the loss must have parameters"
    for per_rank in results:
        state = per_rank[(kind, mode)]
        assert state.keys() == expected.keys()
        for name, value in expected.items():
            assert torch.allclose(state[name], value, rtol=0, atol=1e-12), (name, mode)

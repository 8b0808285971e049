"""Miners called as pytorch-metric-learning's are: ``miner(embeddings, labels)``."""

from __future__ import annotations

import pytest
import torch

from rankloss import mining


@pytest.mark.parametrize("name", mining.available())
def test_two_argument_call_equals_mine(name):
    torch.manual_seed(0)
    embeddings = torch.randn(12, 5)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    miner = mining.get(name)
    got = miner(embeddings, labels, generator=torch.Generator().manual_seed(1))
    want = miner.mine(embeddings, labels, generator=torch.Generator().manual_seed(1))
    assert type(got) is type(want)
    for field in ("anchor",):
        assert torch.equal(getattr(got, field), getattr(want, field))
    assert len(got) == len(want)


@pytest.mark.badinput("losses")
def test_two_argument_call_refuses_float_labels():
    miner = mining.get("batch_hard")
    with pytest.raises((ValueError, TypeError), match="labels"):
        miner(torch.randn(6, 3), torch.randn(6))

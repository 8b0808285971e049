"""Real fetches from the package registries (marked ``network``; cache-aware: a cached copy
is verified by checksum and reused)."""

from __future__ import annotations

import pytest
import torch

import rankloss.data as data


@pytest.mark.network
def test_mslr_sample_real_fetch():
    ds = data.load("mslr10k-sample")
    assert ds.train.num_features == 136
    assert len(ds.train) + len(ds.validation) == 43 and len(ds.test) == 43
    assert ds.train.num_documents + ds.validation.num_documents == 5000
    assert set(torch.unique(ds.test.labels[ds.test.mask]).tolist()) <= {0, 1, 2, 3, 4}


@pytest.mark.network
def test_digits_offline():
    ds = data.load("digits")
    assert len(ds.train) + len(ds.validation) + len(ds.test) == 1797

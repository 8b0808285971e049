"""Every docstring example in the package runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import rankloss

# Modules that import optional extras at import time are skipped when the extra is missing.
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(rankloss.__path__, prefix="rankloss.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as error:  # an optional extra (triton, torchmetrics, ...) is missing
        pytest.skip(f"{name} needs an optional package: {error}")
    torch.manual_seed(0)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"

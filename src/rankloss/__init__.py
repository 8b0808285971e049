"""rankloss: ranking losses, miners, metrics and a benchmark harness for PyTorch.

Scores and labels are ``[..., n]`` (one list per row) with a bool ``mask`` marking real items;
embeddings are ``[N, d]`` with integer ``labels [N]``. See ``docs/conventions.md``.

The library (``functional``, ``losses``, ``lists``, ``metrics``, ``mining``, ``augment``)
imports at once; the harness around it (``data``, ``models``, ``train``, ``bench``) is imported
on first use.
"""

import importlib
from typing import Any

from rankloss import augment, functional, lists, losses, metrics, mining
from rankloss._version import __version__

_LAZY = ("data", "models", "train", "bench")

__all__ = [
    "functional",
    "lists",
    "losses",
    "metrics",
    "mining",
    "augment",
    *_LAZY,
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"rankloss.{name}")
    raise AttributeError(f"module 'rankloss' has no attribute {name!r}")

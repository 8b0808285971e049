"""rankloss: ranking losses, miners, metrics and a benchmark harness for PyTorch.

Scores and labels are ``[..., n]`` (one list per row) with a bool ``mask`` marking real items;
embeddings are ``[N, d]`` with integer ``labels [N]``. See ``docs/conventions.md``.
"""

from rankloss import functional, lists, losses

__version__ = "0.1.0"

__all__ = ["functional", "lists", "losses", "__version__"]

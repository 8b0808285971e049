"""Which implementation a loss runs: ``impl="auto" | "torch" | "streaming" | "triton"``.

* ``"torch"``: the direct PyTorch form (``[B, n, n]`` pair matrices, ``[N, M]`` similarities).
* ``"streaming"``: the same loss over tiles, with a custom backward that recomputes them, so
  memory is :math:`O(Bn + \\text{tile}^2)` (lists) or :math:`O(Nd + N\\,\\text{chunk})`
  (embeddings). Pure PyTorch, CPU and GPU.
* ``"triton"``: a fused Triton kernel (CUDA tensors; CPU tensors only under
  ``TRITON_INTERPRET=1``).
* ``"auto"``: ``"triton"`` on CUDA tensors when Triton is importable and the loss has a kernel
  for the given options; otherwise ``"streaming"`` when the direct form would hold more than
  ``streaming_above`` elements in one matrix and the loss has a streaming path; otherwise
  ``"torch"``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Literal

import torch

from rankloss._core import params

__all__ = ["IMPLS", "Impl", "resolve_impl", "triton_available", "triton_usable"]

Impl = Literal["auto", "torch", "streaming", "triton"]

#: The accepted values of ``impl``.
IMPLS: tuple[str, ...] = ("auto", "torch", "streaming", "triton")

#: ``"auto"`` streams when one direct matrix would hold more elements than this (2**26: 256 MiB
#: in float32).
STREAMING_ABOVE = 1 << 26


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    """Whether the ``triton`` package can be imported (looked up once, not imported)."""
    return importlib.util.find_spec("triton") is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_usable(device: torch.device) -> bool:
    """Whether a Triton kernel can run on tensors of ``device``: Triton is importable and the
    device is CUDA, or any device under ``TRITON_INTERPRET=1`` (the interpreter runs on CPU)."""
    if not triton_available():
        return False
    return device.type == "cuda" or (_interpreting() and device.type == "cpu")


def resolve_impl(
    impl: str,
    device: torch.device,
    *,
    where: str,
    elements: int = 0,
    has_streaming: bool = True,
    has_triton: bool = True,
    streaming_above: int = STREAMING_ABOVE,
) -> Literal["torch", "streaming", "triton"]:
    """The implementation to run, after checking that the one asked for can run.

    Args:
        impl: one of :data:`IMPLS`.
        device: the device of the inputs.
        where: the caller's name, for error messages.
        elements: the number of elements of the largest matrix the direct form would build.
        has_streaming: the loss has a streaming path for these options.
        has_triton: the loss has a Triton kernel for these options.
        streaming_above: ``"auto"`` streams above this many ``elements``.

    Returns:
        ``"torch"``, ``"streaming"`` or ``"triton"``.

    Raises:
        ValueError: ``impl`` is not a known name, or names a path this loss lacks for these
            options, or ``"triton"`` cannot run here (no Triton, or not a CUDA device outside
            the interpreter).
    """
    params.choice(where, "impl", impl, IMPLS)
    if impl == "auto":
        if has_triton and device.type == "cuda" and triton_usable(device):
            return "triton"
        if has_streaming and elements > streaming_above:
            return "streaming"
        return "torch"
    if impl == "streaming" and not has_streaming:
        raise ValueError(f"{where}: impl='streaming' is not available for these options")
    if impl == "triton":
        if not has_triton:
            raise ValueError(f"{where}: impl='triton' is not available for these options")
        if not triton_available():
            raise ValueError(
                f"{where}: impl='triton' needs the triton package (pip install rankloss[triton])"
            )
        if not triton_usable(device):
            raise ValueError(
                f"{where}: impl='triton' needs CUDA tensors (or TRITON_INTERPRET=1 to run the "
                f"kernel in Triton's interpreter on CPU), got tensors on {device}"
            )
    return impl  # type: ignore[return-value]

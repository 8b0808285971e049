"""Fused GPU kernels (Triton) for the losses whose direct form holds ``[N, M]`` or ``[B, n, n]``.

Every kernel has a PyTorch path in :mod:`rankloss.functional` that gives the same value and
gradients; the losses choose between them with ``impl`` (see :mod:`rankloss.kernels.dispatch`).
Triton is optional (``pip install rankloss[triton]``): without it, ``impl="auto"`` never picks a
kernel and ``impl="triton"`` raises a clear error. On a machine without a GPU the kernels run
under Triton's interpreter (``TRITON_INTERPRET=1``), which is how the CPU tests check them.

Kernel modules import Triton at import time; this package does not, so importing
:mod:`rankloss.kernels` is cheap and safe everywhere.
"""

from rankloss.kernels.dispatch import IMPLS, Impl, resolve_impl, triton_available, triton_usable

__all__ = ["IMPLS", "Impl", "resolve_impl", "triton_available", "triton_usable"]

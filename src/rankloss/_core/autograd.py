"""Custom backward passes that are differentiable once.

A ``torch.autograd.Function`` whose backward uses gradients computed in its forward (the
streaming, chunked and fused paths recompute or store them without a graph) gives a wrong
second derivative, silently, if it is differentiated again (``create_graph=True``: a gradient
penalty, a Hessian-vector product). :func:`first_order_backward` makes such a backward refuse
instead: autograd runs a backward with grad mode on exactly when it builds a graph of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

__all__ = ["first_order_backward"]

F = TypeVar("F", bound=Callable[..., Any])


def first_order_backward(where: str, instead: str) -> Callable[[F], F]:
    """Decorate a ``backward`` that is not differentiable: called under
    ``create_graph=True`` it raises a ``RuntimeError`` naming ``where`` and what to use
    ``instead``; otherwise it runs without building a graph (as ``once_differentiable``).

    Args:
        where: the path, for the message (``"ranknet_loss(impl='streaming')"``).
        instead: what gives second derivatives (``"impl='torch'"``).
    """

    def decorate(backward: F) -> F:
        @functools.wraps(backward)
        def wrapper(ctx: Any, *grads: Any) -> Any:
            if torch.is_grad_enabled():
                raise RuntimeError(
                    f"{where}: this path gives first-order gradients only, and a second "
                    "derivative (create_graph=True, e.g. a gradient penalty) would be wrong; "
                    f"use {instead}"
                )
            return backward(ctx, *grads)

        return wrapper  # type: ignore[return-value]

    return decorate

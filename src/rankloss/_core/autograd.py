"""Custom backward passes that are differentiable once.

A ``torch.autograd.Function`` whose backward uses gradients computed in its forward (the
streaming, chunked and fused paths recompute or store them without a graph) gives a wrong
second derivative, silently, if it is differentiated again (``create_graph=True``: a gradient
penalty, a Hessian-vector product). :func:`first_order_backward` makes such a backward refuse
instead, as ``torch.autograd.function.once_differentiable`` means to; that decorator only
refuses when an incoming gradient requires grad, which these backward passes' inputs do not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch._C import _functions

__all__ = ["first_order_backward"]

F = TypeVar("F", bound=Callable[..., Any])


def first_order_backward(where: str, instead: str) -> Callable[[F], F]:
    """Decorate a ``backward`` that is not differentiable. It runs without building a graph;
    under ``create_graph=True`` its gradients are returned as usual (first-order use, e.g. a
    gradient that is only read, works), but differentiating them again raises a
    ``RuntimeError`` naming ``where`` and what to use ``instead``.

    Args:
        where: the path, for the message (``"ranknet_loss(impl='streaming')"``).
        instead: what gives second derivatives (``"impl='torch'"``).
    """
    message = (
        f"{where}: this path gives first-order gradients only, and a second derivative "
        f"(create_graph=True, e.g. a gradient penalty) would be wrong; use {instead}"
    ).encode()

    def decorate(backward: F) -> F:
        @functools.wraps(backward)
        def wrapper(ctx: Any, *grads: Any) -> Any:
            with torch.no_grad():
                outputs = backward(ctx, *grads)
            if not torch.is_grad_enabled():  # an ordinary backward: nothing to guard
                return outputs
            # Every gradient gets a node that raises when a second backward reaches it.
            many = isinstance(outputs, tuple)
            values = outputs if many else (outputs,)
            error = _functions.DelayedError(message, len(values))
            inputs = [None if v is None else v.detach().requires_grad_() for v in values]
            guarded = error(*inputs)  # type: ignore[arg-type]  # None passes through
            guarded = guarded if isinstance(guarded, tuple) else (guarded,)
            return tuple(guarded) if many else guarded[0]

        return wrapper  # type: ignore[return-value]

    return decorate

"""llgrad.autograd: backward, grad, grad modes, grad_fn nodes, and the legacy Variable."""

from __future__ import annotations

import warnings

from . import functional
from .custom import Function, FunctionCtx
from .engine import backward, grad
from .function import AccumulateGrad, BackwardNode, Node
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck


def Variable(data, requires_grad: bool = False, volatile: bool = False):
    """The pre-0.4 wrapper: today it returns a tensor sharing `data`'s value."""
    from ..tensor import Tensor

    if volatile:
        warnings.warn("volatile was removed and now has no effect. Use `with torch.no_grad():` instead.",
                      UserWarning, stacklevel=2)
    if not isinstance(data, Tensor):
        raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
    if requires_grad and not data.dtype.is_floating_point:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    out = data.detach()
    out._requires_grad = bool(requires_grad)
    return out


class graph:
    Node = Node


__all__ = ["Function", "FunctionCtx", "functional", "gradcheck", "gradgradcheck", "GradcheckError",
           "Variable", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "Node", "BackwardNode", "AccumulateGrad", "graph"]

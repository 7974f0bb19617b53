"""llgrad.nn.functional: the stateless layer functions (F.relu, F.cross_entropy, F.conv2d...).

Each records ordinary IR ops (so they fuse with their neighbours); the few
PyTorch ops llgrad has no composition for are op-table entries (gelu, erf,
rand_uniform).
"""

from __future__ import annotations

import warnings

from llgrad.compiler import dtypes

from .. import functional as _F
from .. import random as _random
from .. import trace_state
from ..dispatch import apply
from ..indexing import IndexBounds
from ..tensor import Tensor
from ._conv import conv2d, max_pool2d, pad
from ._losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)

# -- activations ------------------------------------------------------------------------------


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else _F.relu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    out = _F.where(_F.gt(input, 0), input, _F.mul(input, negative_slope))
    return input.copy_(out) if inplace else out


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) with the exact erf (default) or PyTorch's tanh approximation."""
    return apply("gelu", input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    out = _F.mul(input, _F.sigmoid(input))
    return input.copy_(out) if inplace else out


def sigmoid(input: Tensor) -> Tensor:
    return _F.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return _F.tanh(input)


def _softmax_dim(ndim: int, name: str) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
                  "dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim(input.dim(), "softmax")
    return _F.softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim(input.dim(), "log_softmax")
    return _F.log_softmax(input, dim, dtype=dtype)


# -- layers -------------------------------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias."""
    out = _F.matmul(input, _F.t(weight) if weight.dim() == 2 else weight)
    return out if bias is None else _F.add(out, bias)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity unless training).

    The mask is computed inside the compiled program from llgrad.random's counter-based
    stream: a fresh mask per call, no recompile (seed and offset are run-time scalars).
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        scale = _F.mul(input, 0.0)
    else:
        keep = _F.ge(_random.uniform(tuple(input.shape)), p)
        scale = _F.where(keep, 1.0 / (1.0 - p), 0.0)
        if input.dtype is not dtypes.float32:
            scale = scale.to(input.dtype)
    return input.mul_(scale) if inplace else _F.mul(input, scale)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over the trailing `normalized_shape` dims (biased var), then affine."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.dim() - k:]) != shape or input.dim() < k:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(str(s) for s in shape)}], but got input of size{list(input.shape)}")
    dims = tuple(range(input.dim() - k, input.dim()))
    centered = _F.sub(input, _F.mean(input, dims, keepdim=True))
    var = _F.mean(_F.mul(centered, centered), dims, keepdim=True)
    out = _F.mul(centered, _F.rsqrt(_F.add(var, eps)))
    if weight is not None:
        out = _F.mul(out, weight)
    if bias is not None:
        out = _F.add(out, bias)
    return out


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm=None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """weight[input]; rows at padding_idx get no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding(max_norm / scale_grad_by_freq / sparse) is not supported")
    if input.dtype.is_floating_point or input.dtype is dtypes.bool_:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar "
                           f"types: Long, Int; but got {input.dtype} instead")
    # (PyTorch does not count negative rows from the end)
    input = IndexBounds(weight.shape[0], negative=False, message="index out of range in self").checked(input)
    out = apply("index", weight, input, start=0, count=1)
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += weight.shape[0]
        out = _F.where(_F.unsqueeze(_F.eq(input, padding_idx), -1), out.detach(), out)
    return out


def _known_values(t: Tensor):
    """t's values where they can be read now (not while llgrad.compile traces a pending one)."""
    if t._node.buffer is None and trace_state.active() is not None:
        return None
    return t.detach()._realize()


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    values = _known_values(tensor)
    if values is not None and values.size:
        if values.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if 0 <= num_classes <= values.max():
            raise RuntimeError("Class values must be smaller than num_classes.")
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    shape = tuple(tensor.shape) + (num_classes,)
    hit = _F.eq(apply("iota", shape=shape, dim=len(shape) - 1), _F.unsqueeze(tensor, -1))
    return hit.to(dtypes.int64)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _F.flatten(input, start_dim, end_dim)


__all__ = ["relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "linear",
           "dropout", "layer_norm", "embedding", "one_hot", "flatten", "conv2d", "max_pool2d", "pad",
           "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
           "binary_cross_entropy"]

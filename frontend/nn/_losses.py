"""Loss functions of nn.functional, composed from elementwise ops and reductions.

Class indices pick their log-probability through a one-hot mask built from
`iota == target` rather than a gather: the pick, its gradient and the
reduction then fuse into the loops of log_softmax (a gather's gradient would
be a serial scatter kernel).
"""

from __future__ import annotations

import warnings

from llgrad.compiler import dtypes

from .. import functional as F
from ..dispatch import apply
from ..tensor import Tensor


def _reduce(loss: Tensor, reduction: str, divisor: Tensor | None = None) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return F.sum(loss)
    if reduction == "mean":
        return F.mean(loss) if divisor is None else F.div(F.sum(loss), divisor)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='mean' instead.",
                  UserWarning, stacklevel=3)
    return "none" if not reduce else ("mean" if size_average else "sum")


def _check_targets(target: Tensor, classes: int, ignore_index: int) -> bool:
    """PyTorch's bounds check, where the targets are already known (no extra computation).
    True when they are known and none of them is ignore_index."""
    if target._node.buffer is None:
        return False
    values = target._node.buffer.array
    ignored = values == ignore_index
    bad = values[~ignored & ((values < 0) | (values >= classes))]
    if bad.size:
        raise IndexError(f"Target {int(bad.flat[0])} is out of bounds.")
    return values.size > 0 and not ignored.any()


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] (times weight[target[n]]), over (N, C[, d...]) or (C,) inputs."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if target.dtype.is_floating_point or target.dtype is dtypes.bool_:
        raise RuntimeError(f"expected scalar type Long but found {_name(target.dtype)}")
    class_dim = 0 if input.dim() == 1 else 1
    expected = tuple(input.shape[:class_dim]) + tuple(input.shape[class_dim + 1:])
    if tuple(target.shape) != expected:
        raise ValueError(f"Expected target size {list(expected)}, got {list(target.shape)}")
    classes = input.shape[class_dim]
    all_valid = _check_targets(target, classes, ignore_index)
    hit = F.eq(apply("iota", shape=tuple(input.shape), dim=class_dim), F.unsqueeze(target, class_dim))
    picked = F.sum(F.where(hit, input, 0.0), dim=class_dim)
    if weight is None and all_valid:  # the common case, in fewer ops: nothing to mask or count
        return _reduce(F.neg(picked), reduction)
    valid = F.ne(target, ignore_index)
    if weight is not None:
        if tuple(weight.shape) != (classes,):
            raise RuntimeError(f"weight tensor should be defined either for all {classes} classes or no "
                               f"classes but got weight tensor of shape: {list(weight.shape)}")
        at = [1] * input.dim()
        at[class_dim] = classes
        w = F.where(valid, F.sum(F.where(hit, F.reshape(weight, tuple(at)), 0.0), dim=class_dim), 0.0)
    else:
        w = F.where(valid, 1.0, 0.0).to(input.dtype)
    loss = F.neg(F.mul(picked, w))
    return _reduce(loss, reduction, F.sum(w) if reduction == "mean" else None)


def _name(dt: dtypes.DType) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}[dt.name]


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim, then nll_loss (class indices) or -sum(p * log q) (probabilities)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if label_smoothing != 0.0:
        raise NotImplementedError("cross_entropy(label_smoothing=...) is not supported")
    class_dim = 0 if input.dim() == 1 else 1
    logp = F.log_softmax(input, class_dim)
    if target.dtype.is_floating_point:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"Expected target of shape {list(input.shape)} for class probabilities, "
                               f"got {list(target.shape)}")
        if weight is not None:
            at = [1] * input.dim()
            at[class_dim] = input.shape[class_dim]
            logp = F.mul(logp, F.reshape(weight, tuple(at)))
        return _reduce(F.neg(F.sum(F.mul(logp, target), dim=class_dim)), reduction)
    return nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean") -> Tensor:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_broadcast(input, target)
    diff = F.sub(input, target)
    return _reduce(F.mul(diff, diff), reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_broadcast(input, target)
    return _reduce(F.abs(F.sub(input, target)), reduction)


def _warn_broadcast(input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=3)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """(1 - t) x + (1 + (pos_weight - 1) t) (log1p(exp(-|x|)) + max(-x, 0)): stable for any x."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    softplus_neg = F.add(F.log1p(F.exp(F.neg(F.abs(input)))), F.clamp_min(F.neg(input), 0))
    if pos_weight is not None:
        softplus_neg = F.mul(softplus_neg, F.add(F.mul(F.sub(pos_weight, 1), target), 1))
    loss = F.add(F.mul(F.rsub(target, 1), input), softplus_neg)
    if weight is not None:
        loss = F.mul(loss, weight)
    return _reduce(loss, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """-w (t log x + (1 - t) log(1 - x)), each log clamped at -100, with PyTorch's gradients (the
    op-table entry `binary_cross_entropy`: finite where x is 0 or 1)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if weight is None:
        return apply("binary_cross_entropy", input, target, reduction=reduction)
    if weight.requires_grad:
        raise RuntimeError("The function 'binary_cross_entropy' is not differentiable with respect to "
                           "argument 'weight'. This input cannot have requires_grad True.")
    weight = F.expand(weight, *input.shape)  # PyTorch repeats it to the input's shape
    return apply("binary_cross_entropy", input, target, weight, reduction=reduction)


__all__ = ["nll_loss", "cross_entropy", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
           "binary_cross_entropy"]

"""In-place ops, including through views.

Buffers are immutable, so an in-place op computes the new value functionally
and then rebinds: a tensor that owns its storage gets the new node; a view
writes its new value back through its chain of view ops into the base value
(a slice becomes `where(window, embed(value), base)`, a reshape its inverse
reshape...). When autograd is involved that write-back is recorded with
autograd too, so the base's history becomes the write (PyTorch calls that
node CopySlices) and the view's history is replayed from the new base.
"""

from __future__ import annotations

import weakref

from llgrad.compiler.ops import IREmitter

from . import trace_state
from .autograd import grad_mode
from .autograd.function import node_class
from .dispatch import EMIT, apply
from .tensor import Tensor

_IR = IREmitter()


def replay(base: Tensor, chain: tuple) -> Tensor:
    """The view `chain` applied to `base` again, recording autograd. PyTorch (without view
    replay) names the regenerated node AsStridedBackward0."""
    out = base
    for op, attrs in chain:
        out = apply(op, out, **attrs)
    if out._grad_fn is not None and chain:
        out._grad_fn.__class__ = node_class("AsStridedBackward0")
    return out


def _write_back(emit, base, chain: tuple, value):
    """The value of `base` after writing `value` into the view `chain` of it."""
    inputs = [base]
    for op, attrs in chain[:-1]:
        inputs.append(getattr(emit, op)(inputs[-1], **attrs))
    new = value
    for (op, attrs), src in zip(reversed(chain), reversed(inputs)):
        new = _inverse(emit, op, attrs, src, new)
    return new


def _inverse(emit, op: str, attrs: dict, src, new):
    if op in ("reshape", "squeeze", "unsqueeze", "unsafe_view"):
        return emit.reshape(new, shape=tuple(src.shape))
    if op == "alias":
        return new
    if op in ("permute", "transpose", "t"):
        dims = attrs["dims"]
        return emit.permute(new, dims=tuple(sorted(range(len(dims)), key=dims.__getitem__)))
    if op in ("slice", "split", "select", "unbind"):
        d = attrs["dim"]
        start, step = (attrs["index"], 1) if op in ("select", "unbind") else (attrs["start"], attrs["step"])
        if op in ("select", "unbind"):
            new = emit.unsqueeze(new, dim=d)
        size = tuple(src.shape)[d]
        mask = emit.embed(emit.expand(True, shape=tuple(new.shape)), dim=d, start=start, step=step, size=size)
        return emit.where(mask, emit.embed(new, dim=d, start=start, step=step, size=size), src)
    if op == "expand":
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a single "
            "memory location. Please clone() the tensor before performing the operation."
        )
    raise AssertionError(f"no write-back rule for view op {op}")


def snapshot(t: Tensor) -> Tensor:
    """t's current value with t's autograd identity, for computing t's in-place update:
    what the update's backward saves must not be the tensor the update then overwrites."""
    snap = Tensor._from_node(t._node, owned=False)
    snap._grad_fn, snap._requires_grad = t.grad_fn, t.requires_grad
    if snap._grad_fn is None and snap._requires_grad:
        return t  # a leaf (only reachable under no_grad, where nothing is saved)
    return snap


def _adopt_output(t: Tensor, result: Tensor) -> None:
    """A backward node that saved `result` as its output now saves t, which became it."""
    fn = result._grad_fn
    saved = fn._saved.get("out") if fn is not None and fn._saved else None
    if saved is not None:
        saved.value, saved.counter, saved.version = weakref.ref(t), t._vc, t._vc.value


def check_inplace(t: Tensor) -> None:
    """PyTorch's refusal to modify leaves that require grad (outside no_grad)."""
    if not grad_mode.is_grad_enabled():
        return
    if t._base is not None:
        base = t._base
        if base._grad_fn is None and base._requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                               "in-place operation.")
    elif t._grad_fn is None and t._requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def commit(t: Tensor, result: Tensor, overwrite: bool = False) -> Tensor:
    """Make `result` (already of t's shape and dtype) the new value of `t`, in place.
    overwrite: the result does not read t's old value (copy_), yet PyTorch keeps the edge."""
    tracking = grad_mode.is_grad_enabled()
    if not t._view:
        old_fn, old_node = t._grad_fn, t._storage.node
        t._set_node(result._node)
        if tracking:
            if result._requires_grad and not (overwrite and old_fn is not None):
                t._grad_fn, t._requires_grad = result._grad_fn, True
                _adopt_output(t, result)
            elif old_fn is not None:
                # Overwritten: the old history still gets its (zero) gradient.
                old = Tensor._from_node(old_node)
                old._grad_fn, old._requires_grad = old_fn, True
                t._grad_fn = apply("add", result, apply("mul", old, 0))._grad_fn
        return t
    base = t._base
    if tracking and base is not None and (base._requires_grad or result._requires_grad):
        new_base = _write_back(EMIT, base, t._view, result)
        base._set_node(new_base._node)
        base._grad_fn, base._requires_grad = new_base._grad_fn, True
        if base._grad_fn is not None:
            base._grad_fn.__class__ = node_class("CopySlices")
        fresh = replay(base, t._view)
        t._grad_fn, t._requires_grad = fresh._grad_fn, True
        t._view_version = t._vc.value
        _adopt_output(t, result)
        return t
    storage = t._storage
    tracer = trace_state.active()
    if tracer is not None:
        tracer.storage_changed(storage, storage.node)
    storage.set(_write_back(_IR, storage.node, t._view, result._node))
    t._vc.value += 1
    t._view_version = t._vc.value
    return t

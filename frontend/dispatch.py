"""Recording an op: build its IR node, wrap it in a Tensor, attach its grad_fn.

`apply(name, *srcs, **attrs)` is the one door from the frontend into the IR.
Shape and dtype errors are raised here, by the op table's rule, at the line
the user wrote. It is also the emitter VJP rules are written against when a
backward pass must itself be differentiable (`create_graph=True`), since it
spells ops exactly like the compiler's IREmitter does.
"""

from __future__ import annotations

import numbers
import os
import sys
import threading
import weakref

import numpy as np
from llgrad.compiler import dtypes
from llgrad.compiler.dtypes import FLOATING
from llgrad.compiler.ops import OPS, make, param
from llgrad.runtime import pending
from llgrad.runtime.executor import realize_pending

from .autograd import grad_mode
from .autograd.function import BackwardNode, SavedValue, edge_of, node_class
from .layout import after_view, contiguous_strides
from .tensor import Tensor
from .trace_state import Live

_backward = threading.local()  # .depth > 0 while this thread's backward pass emits nodes


def backward_depth() -> int:
    return getattr(_backward, "depth", 0)


def enter_backward(step: int) -> None:
    """+1 on entering a backward pass, -1 on leaving (nodes made inside are marked backward)."""
    _backward.depth = backward_depth() + step

# -- source locations: where the user wrote each op (dumps print it as MLIR `loc(...)`) --
_getframe = sys._getframe
_OWN_DIRS = tuple(os.path.dirname(path) + os.sep  # llgrad, llgrad.compiler, llgrad.runtime
                  for path in (__file__, dtypes.__file__, sys.modules["llgrad.runtime"].__file__))
# The demo and the benchmarks ship inside llgrad but are programs using it: their lines are the
# user's. Python's frozen import machinery (runpy under `python -m`) never is.
_USER_DIRS = tuple(os.path.join(os.path.dirname(__file__), p) for p in ("demo.py", "bench" + os.sep))
_own_file: dict = {}


def _is_own(filename: str) -> bool:
    if filename.startswith("<frozen "):
        return True
    return filename.startswith(_OWN_DIRS) and not filename.startswith(_USER_DIRS)


def _user_loc():
    """(code, instruction offset) of the first frame outside llgrad; resolved only when printed.

    Each frame looked at costs a frame object, so the walk starts above apply()'s caller, which
    is always llgrad's own (a functional op, a Tensor method, autograd): `x + y` looks at two.
    """
    try:
        f = _getframe(3)  # 0: here, 1: apply, 2: its caller in llgrad
    except ValueError:
        return None
    while f is not None:
        code = f.f_code
        own = _own_file.get(code.co_filename)
        if own is None:
            own = _own_file[code.co_filename] = _is_own(code.co_filename)
        if not own:
            return code, f.f_lasti
        f = f.f_back
    return None


def scalar_value(value):
    """A Python number from a Python or NumPy scalar, else TypeError."""
    if type(value) is float:
        return value
    if isinstance(value, Live):  # re-read at every replay of a compiled step
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        value = int(value)
        if not -(2**63) <= value < 2**63:
            raise RuntimeError(f"value cannot be converted to type int64 without overflow: {value}")
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"expected a Tensor or a Python number, got {type(value).__name__}")


def apply(name: str, *srcs, **attrs) -> Tensor:
    """Record op `name` on tensors and Python numbers; return its result tensor."""
    op = OPS[name]
    nodes = []
    for s in srcs:
        if type(s) is Tensor or isinstance(s, Tensor):  # subclasses: nn.Parameter
            if s._base is not None:
                s._sync_view()
            nodes.append(s._node)
        else:
            nodes.append(param(scalar_value(s)))
    node = make(op, nodes, attrs)
    seg = pending.current()
    seg.record(node)
    node.loc = _user_loc()
    depth = backward_depth()
    if depth:
        node.backward = True
    if name in VIEW_OPS and isinstance(srcs[0], Tensor):
        out = _view_of(srcs[0], name, node)
    else:
        out = Tensor._from_node(node, owned=not depth)
    if op.vjp is not None and node.dtype.category == FLOATING and grad_mode.is_grad_enabled():
        _record(op, node, srcs, out)
    if len(seg) > pending.MAX_PENDING and not depth:  # the bound (a backward pass checks its own)
        realize_pending()
    return out


# Movement ops whose result shares storage with its input (the rest make fresh tensors).
VIEW_OPS = frozenset({"reshape", "squeeze", "unsqueeze", "permute", "transpose", "t", "expand",
                      "slice", "split", "select", "unbind", "alias"})


def _view_of(src: Tensor, name: str, node) -> Tensor:
    shape = src._node.shape
    strides, offset = src._layout or (contiguous_strides(shape), 0)
    strides, offset = after_view(name, node.attrs, shape, node.shape, strides, offset)
    if strides is None:  # a reshape this memory layout cannot view (VJPs reshape freely): a copy
        return Tensor._from_node(node, owned=not backward_depth())
    layout = None if offset == 0 and strides == contiguous_strides(node.shape) else (strides, offset)
    out = src._alias(((name, node.attrs),), layout=layout)
    out._view_cache = (out._storage.node, node)
    return out


class Emitter:
    """`e.mul(a, b)`: the op-by-name interface VJP rules use, over tensors."""

    def __getattr__(self, name: str):
        return lambda *srcs, **attrs: apply(name, *srcs, **attrs)


EMIT = Emitter()


def _record(op, node, srcs, out: Tensor) -> None:
    needs = tuple(isinstance(s, Tensor) and s._requires_grad for s in srcs)
    if not any(needs):
        return
    cls = node_class(op.grad_fn_name(node.attrs))
    fn = cls.__new__(cls)
    BackwardNode.__init__(fn)
    fn.op = op
    fn.attrs = node.attrs
    inputs = tuple(edge_of(s) if isinstance(s, Tensor) else None for s in srcs)
    fn._next = tuple((inputs[i], 0) for i in (op.edges if op.edges is not None else range(len(srcs))))
    fn._needs = needs
    fn._src_shapes = tuple(n.shape for n in node.srcs)
    fn._src_dtypes = tuple(n.dtype for n in node.srcs)
    fn._out_shape, fn._out_dtype = node.shape, node.dtype
    fn._src_values = inputs
    fn._freed = False
    fn._tensor_hooks = None
    fn._retain = None
    fn._saved = _save(op, node, srcs, out, needs)
    out._grad_fn = fn
    out._requires_grad = True


def _save(op, node, srcs, out: Tensor, needs: tuple) -> dict:
    saved: dict = {}
    for i, needed in enumerate(needs):
        if not needed:
            continue
        for item in op.saved(node.attrs).get(i, ()):
            # ("value", k): source k as it is now, a snapshot never version-checked (what a VJP
            # reads where PyTorch saves something derived, like max's indices)
            frozen = isinstance(item, tuple)
            item = item[1] if frozen else item
            if item in saved or (item != "out" and item >= len(srcs)):
                continue
            if item == "out":
                saved[item] = SavedValue(weakref.ref(out), node, out._vc, None, is_output=True)
                continue
            s = srcs[item]
            if frozen and isinstance(s, Tensor):
                saved[item] = SavedValue(Tensor._from_node(s._node, owned=False), s._node, None, None)
            elif isinstance(s, Tensor):
                owner = s._grad_fn.name() if s._grad_fn is not None else None
                saved[item] = SavedValue(s, s._node, s._vc, owner)
            else:
                saved[item] = SavedValue(s, node.srcs[item], None, None)
    return saved


def to_tensor(value, like: Tensor | None = None) -> Tensor:
    """A tensor for a tensor or Python number (numbers become 0-d tensors)."""
    if isinstance(value, Tensor):
        return value
    v = scalar_value(value)
    from .creation import tensor

    return tensor(v, dtype=like.dtype if like is not None else None)


__all__ = ["apply", "EMIT", "dtypes"]

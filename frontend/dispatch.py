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
from llgrad.compiler.graph import Node
from llgrad.compiler.ops import OPS, canonical_attrs, make, param
from llgrad.runtime import pending
from llgrad.runtime.executor import realize_pending

from .autograd import grad_mode
from .autograd.function import SavedValue, _sequence, accumulator, node_class
from .layout import after_view, contiguous_strides
from .tensor import Storage, Tensor, VersionCounter
from .trace_state import Live


class _BackwardState(threading.local):
    """Per thread: depth > 0 while a backward pass emits nodes; the user line it runs for; the
    list a backward template is being recorded into (class attributes: each thread's defaults)."""

    depth = 0
    loc = None
    recorder = None


_backward = _BackwardState()


def backward_depth() -> int:
    return _backward.depth


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
    """Record op `name` on tensors and Python numbers; return its result tensor.

    The hot path of eager code: every op a user writes passes here once, so it does the
    minimum inline (one IR node, one segment entry, one tensor, a grad_fn where needed).
    """
    op = OPS[name]
    nodes = []
    grad = False
    for s in srcs:
        if isinstance(s, Tensor):  # subclasses too: nn.Parameter
            if s._base is not None:
                s._sync_view()
                nodes.append(s._node)
            else:
                nodes.append(s._storage.node)
            if s._requires_grad:
                grad = True
        elif type(s) is float:  # the common Python numbers, without scalar_value's checks
            n = Node(_PARAM, (), {}, (), dtypes.DEFAULT_FLOAT)
            n.value = s
            nodes.append(n)
        elif type(s) is int and -_INT64 <= s < _INT64:
            n = Node(_PARAM, (), {}, (), dtypes.int64)
            n.value = s
            nodes.append(n)
        else:
            nodes.append(param(scalar_value(s)))
    if attrs:
        canonical_attrs(attrs)  # (a fresh dict: **attrs)
    shape, dtype = op.infer(nodes, attrs)
    if len(attrs) > 1:
        attrs = dict(sorted(attrs.items()))  # canonical order: part of the cache key
    node = Node(op, tuple(nodes), attrs, shape, dtype)
    seg = pending.current()
    seg.record(node)
    node.loc = _user_loc()
    depth = _backward.depth
    if depth:
        node.backward = True
    if name in VIEW_OPS and isinstance(srcs[0], Tensor):
        out = _view_of(srcs[0], name, node)
    elif depth:
        out = Tensor._from_node(node, owned=False)
    else:  # Tensor._from_node, inline: a live result, held in this segment while pending
        out = _new(Tensor)
        out._storage = storage = _new(Storage)
        storage.node = node
        seg.holders.append(weakref.ref(storage))
        out._view = ()
        out._view_cache = out._grad_fn = out._grad = out._accumulator = out._hooks = None
        out._base = out._layout = None
        out._vc = vc = _new(VersionCounter)
        vc.value = 0
        out._requires_grad = out._retains_grad = False
        out._view_version = 0
        node.owner = weakref.ref(out)
    if grad and op.vjp is not None and dtype.category == FLOATING and grad_mode.is_grad_enabled():
        _record(op, node, srcs, out)
    if len(seg.nodes) > pending.MAX_PENDING and not depth:  # the bound (a backward pass checks its own)
        realize_pending()
    return out


_PARAM = OPS["param"]
_INT64 = 2**63
_new = object.__new__

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
    """`e.mul(a, b)`: the op-by-name interface VJP rules use, over tensors (a backward pass that
    is itself differentiated, create_graph=True)."""

    def __getattr__(self, name: str):
        return lambda *srcs, **attrs: apply(name, *srcs, **attrs)


EMIT = Emitter()


class NodeEmitter:
    """The same interface over bare IR nodes, for a backward pass that is not differentiated:
    no Tensor, no grad_fn, no frame walk per op. Nodes are recorded like any op, at the line of
    the backward() call (set by the engine in `_backward.loc`)."""

    def __getattr__(self, name: str):
        op = OPS[name]

        def emit(*srcs, **attrs) -> Node:
            recorder = _backward.recorder
            args = []
            for s in srcs:
                if type(s) is not Node:
                    s = param(scalar_value(s))
                    if recorder is not None:
                        recorder.append(("p", s, ()))
                args.append(s)
            node = make(op, args, attrs)
            node.backward = True
            node.loc = _backward.loc
            pending.current().record(node)
            if recorder is not None:  # a backward template is being recorded (autograd/template.py)
                recorder.append(("n", node, node.srcs))
            return node

        setattr(self, name, emit)  # looked up once per op name
        return emit


NODES = NodeEmitter()


def set_backward_loc(loc) -> None:
    """Where the nodes a backward pass records were asked for (the user's backward() line)."""
    _backward.loc = loc


def set_recorder(recorder: list | None) -> None:
    """Record each node NODES makes into `recorder` (None: stop)."""
    _backward.recorder = recorder



def _record(op, node, srcs, out: Tensor) -> None:
    """Give `out` its grad_fn: the op's backward node, its edges and what its VJP saves."""
    cls = _FN_CLASS.get(op)
    if cls is None:
        cls = node_class(op.grad_fn_name(node.attrs))
        if not callable(op.grad_fn):  # one name for every use of the op
            _FN_CLASS[op] = cls
    fn = object.__new__(cls)
    fn._seq = next(_sequence)
    fn._pre_hooks = fn._post_hooks = ()
    fn._metadata = None
    fn.op = op
    fn.attrs = node.attrs
    needs = []
    edges = []
    for s in srcs:
        if isinstance(s, Tensor) and s._requires_grad:
            needs.append(True)
            e = s._grad_fn
            if e is None:  # a leaf: its AccumulateGrad (accumulator(s), inline)
                ref = s._accumulator
                e = ref() if ref is not None else None
                if e is None:
                    e = accumulator(s)
            elif e.multi_output:  # one of several outputs of a custom Function: which one
                e = (e, e.output_nr[id(s)])
            edges.append(e)
        else:
            needs.append(False)
            edges.append(None)
    fn._needs = needs = tuple(needs)
    fn._src_values = tuple(edges)
    fn._src_shapes = tuple([n.shape for n in node.srcs])
    fn._src_dtypes = tuple([n.dtype for n in node.srcs])
    fn._freed = False
    fn._tensor_hooks = None
    fn._retain = None
    fn._saved = _save(op, node, srcs, out, needs) if op.saves else None
    out._grad_fn = fn
    out._requires_grad = True


_FN_CLASS: dict = {}  # op -> its grad_fn class, for ops whose backward node has one name


def _save(op, node, srcs, out: Tensor, needs: tuple) -> dict:
    saved: dict = {}
    saves = op.saved(node.attrs)
    for i, needed in enumerate(needs):
        if not needed:
            continue
        for item in saves.get(i, ()):
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
                saved[item] = SavedValue(s, s._node, s._vc, s._grad_fn)
            else:
                saved[item] = SavedValue(s, node.srcs[item], None, None)
    return saved or None


def to_tensor(value, like: Tensor | None = None) -> Tensor:
    """A tensor for a tensor or Python number (numbers become 0-d tensors)."""
    if isinstance(value, Tensor):
        return value
    v = scalar_value(value)
    from .creation import tensor

    return tensor(v, dtype=like.dtype if like is not None else None)


__all__ = ["apply", "EMIT", "dtypes"]

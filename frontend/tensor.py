"""The Tensor: a handle on a lazy IR value plus PyTorch's autograd metadata.

A tensor holds a `Storage` (the current IR node of its base value) and, for
views, the chain of view ops from that base. Ops never compute: they record
IR nodes (see dispatch.py). A value is computed when something needs it
(`item`, `repr`, `numpy`, `backward`...), by compiling the pending graph.
In-place ops give the storage a new node and bump the shared version counter,
so buffers are never overwritten and recorded graphs stay valid.
"""

from __future__ import annotations

import operator
import warnings
import weakref

import numpy as np
from llgrad.compiler import dtypes
from llgrad.compiler.graph import Node
from llgrad.compiler.ops import make
from llgrad.runtime import realize
from llgrad.runtime.pending import hold

from . import printing, trace_state
from .autograd import grad_mode


class Size(tuple):
    """torch.Size: a tuple that prints as `torch.Size([2, 2])`."""

    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n


class VersionCounter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Storage:
    """The current value of a base tensor, shared by its views, detach() and .data.

    While its value is pending, the storage is a live holder of its thread's pending segment:
    the next realization computes it (runtime/pending.py).
    """

    __slots__ = ("node", "__weakref__")

    def __init__(self, node: Node, live: bool = True) -> None:
        self.node = node
        if live and node.buffer is None:
            hold(self)

    def set(self, node: Node) -> None:
        self.node = node
        if node.buffer is None:
            hold(self)


class Tensor:
    __slots__ = ("_storage", "_view", "_view_cache", "_vc", "_requires_grad", "_grad_fn", "_grad",
                 "_accumulator", "_retains_grad", "_hooks", "_base", "_layout", "_view_version",
                 "__weakref__")

    # The legacy constructor `torch.Tensor(...)`; internal code uses `_from_node`.
    def __new__(cls, *args, **kwargs):
        from .creation import legacy_tensor

        return legacy_tensor(dtypes.float32, *args, **kwargs)

    @classmethod
    def _from_node(cls, node: Node, requires_grad: bool = False, owned: bool = True) -> Tensor:
        """A tensor for `node`. `owned`: a live user tensor, so a realization while it is pending
        also stores it (tensors made inside a backward pass are not)."""
        t = object.__new__(Tensor)
        t._storage = Storage(node, owned)
        t._view = ()
        t._view_cache = None
        t._vc = VersionCounter()
        t._requires_grad = requires_grad
        t._grad_fn = None
        t._grad = None
        t._accumulator = None
        t._retains_grad = False
        t._hooks = None
        t._base = None
        t._layout = None  # None: contiguous; else (strides, storage offset)
        t._view_version = 0
        if owned:
            node.owner = weakref.ref(t)
        return t

    def _alias(self, view: tuple = (), counter: VersionCounter | None = None, layout=None) -> Tensor:
        """A tensor sharing this one's storage: a view when `view` ops are given (then its
        `_base` is the tensor that owns the chain), else a detached alias."""
        t = object.__new__(Tensor)
        t._storage = self._storage
        t._view = self._view + view
        t._view_cache = None
        t._vc = counter if counter is not None else self._vc
        t._requires_grad = False
        t._grad_fn = None
        t._grad = None
        t._accumulator = None
        t._retains_grad = False
        t._hooks = None
        # The base owns the chain (its own chain is empty); a detached alias of a view has none.
        base = self._base if self._base is not None else (self if not self._view else None)
        t._base = base if view else None
        t._layout = layout if view else self._layout
        t._view_version = t._vc.value
        return t

    # -- the IR value -------------------------------------------------------------
    @property
    def _node(self) -> Node:
        base = self._storage.node
        if not self._view:
            return base
        cached = self._view_cache
        if cached is not None and cached[0] is base:
            return cached[1]
        node = base
        for op, attrs in self._view:
            node = make(op, (node,), attrs)
        self._view_cache = (base, node)
        return node

    def _set_node(self, node: Node) -> None:
        """Give this (non-view) tensor a new value: bumps the version."""
        old = self._storage.node
        if old.owner is not None and old.owner() is self:
            old.owner = None
        tracer = trace_state.active()
        if tracer is not None:
            tracer.storage_changed(self._storage, old)
        self._storage.set(node)
        node.owner = weakref.ref(self)
        self._vc.value += 1

    def _sync_view(self) -> None:
        """After an in-place change through another view, rebuild this view's grad_fn
        from its base (PyTorch regenerates view history the same way)."""
        if self._base is None or self._view_version == self._vc.value:
            return
        self._view_version = self._vc.value
        base = self._base
        if base._requires_grad and grad_mode.is_grad_enabled():
            from .views import replay

            fresh = replay(base, self._view)
            self._grad_fn, self._requires_grad = fresh._grad_fn, True

    def _realize(self, what: str = "a tensor value") -> np.ndarray:
        if trace_state.active() is not None:
            trace_state.value_needed(what)
        node = self._node
        if node.buffer is None:
            base = self._storage.node.buffer
            if self._view and base is not None:  # a view of a computed value: read in place
                return self._strided(base.array)
            realize([node])
        return node.buffer.array

    def _strided(self, base: np.ndarray) -> np.ndarray:
        """This view's elements read through its strides from its base's memory (no program:
        reading `idx[:, t]` to check its indices must not realize everything pending)."""
        from .layout import contiguous_strides

        shape = self._node.shape
        strides, offset = self._layout or (contiguous_strides(shape), 0)
        flat = base.reshape(-1)[offset:]
        size = flat.itemsize
        return np.lib.stride_tricks.as_strided(flat, shape, tuple(s * size for s in strides), writeable=False)

    # -- metadata -------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._node.shape)

    def size(self, dim: int | None = None):
        shape = self._node.shape
        if dim is None:
            return Size(shape)
        from llgrad.compiler.ops.shapes import normalize_dim

        return shape[normalize_dim(dim, len(shape))]

    @property
    def dtype(self) -> dtypes.DType:
        return self._node.dtype

    def dim(self) -> int:
        return len(self._node.shape)

    ndim = property(dim)

    def ndimension(self) -> int:
        return self.dim()

    def numel(self) -> int:
        return self._node.numel

    nelement = numel

    def element_size(self) -> int:
        return self.dtype.itemsize

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def is_cuda(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def stride(self, dim: int | None = None):
        from .layout import contiguous_strides

        strides = contiguous_strides(self._node.shape) if self._layout is None else self._layout[0]
        if dim is None:
            return strides
        from llgrad.compiler.ops.shapes import normalize_dim

        return strides[normalize_dim(dim, len(strides))]

    def storage_offset(self) -> int:
        return 0 if self._layout is None else self._layout[1]

    def is_contiguous(self) -> bool:
        if self._layout is None:
            return True
        from .layout import is_contiguous

        return is_contiguous(self._node.shape, self._layout[0])

    @property
    def _version(self) -> int:
        return self._vc.value

    def type(self, dtype=None):
        if dtype is None:
            return _LEGACY_NAMES[self.dtype.name]
        from .functional import to

        if isinstance(dtype, str):
            dtype = {v: k for k, v in _LEGACY_NAMES.items()}[dtype]
            dtype = getattr(dtypes, dtype if dtype != "bool" else "bool_")
        return to(self, dtype)

    # -- autograd metadata -------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        if self._base is not None:
            self._sync_view()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self._grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach()."
                )
            return self
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients, got {self.dtype!r}")
        if self._base is not None and not requires_grad:
            raise RuntimeError("requires_grad_ cannot be turned off on a view of a tensor that requires grad")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        if self._base is not None:
            self._sync_view()
        return self._grad_fn is None

    @property
    def grad_fn(self):
        if self._base is not None:
            self._sync_view()
        return self._grad_fn

    def _is_view(self) -> bool:
        return self._base is not None

    @property
    def grad(self) -> Tensor | None:
        if self._grad_fn is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed want "
                "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the "
                "non-leaf Tensor. If you access the non-leaf Tensor by mistake, make sure you access "
                "the leaf Tensor instead. See github.com/pytorch/pytorch/pull/30531 for more "
                "information.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        tracer = trace_state.active()
        if tracer is not None:
            tracer.grad_event(self, "set")
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if value.dtype is not self.dtype:
                raise RuntimeError("assigned grad has data of a different type")
            if value.shape != self.shape:
                raise RuntimeError("assigned grad has data of a different size")
        self._grad = value

    def retain_grad(self) -> None:
        if self._grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        self._retains_grad = True
        self._grad_fn._retain = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """hook(grad) -> replacement grad or None, run when this tensor's gradient is computed."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        from .autograd.function import _RemovableHandle

        if self._grad_fn is not None:  # runs when the gradient reaches this tensor's grad_fn
            if self._grad_fn._tensor_hooks is None:
                self._grad_fn._tensor_hooks = []
            hooks = self._grad_fn._tensor_hooks
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        from .autograd.engine import backward

        backward([self], [gradient], retain_graph, create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        return self._alias()

    def detach_(self) -> Tensor:
        if self._base is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self._grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        # Shares the value, not the version counter: changes through .data are untracked.
        return self._alias(counter=VersionCounter())

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        if trace_state.active() is not None:
            raise trace_state.TraceError("llgrad.compile: assigning .data inside a compiled function is not "
                                         "supported; use an in-place copy_ under no_grad instead")
        node = value._node
        old = self._storage.node
        if old.owner is not None and old.owner() is self:
            old.owner = None
        self._storage = Storage(node)
        self._view = ()
        self._view_cache = None
        self._layout = None
        node.owner = weakref.ref(self)

    # -- values out ----------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        array = self._realize("numpy()").view()
        array.flags.writeable = False  # llgrad buffers are immutable; writes would corrupt graphs
        return array

    def tolist(self):
        return self._realize("tolist()").tolist()

    def item(self):
        n = self.numel()
        if n != 1:
            raise RuntimeError(f"a Tensor with {n} elements cannot be converted to Scalar")
        return self._realize("item(), bool(), float() or int()").reshape(()).item()

    def __bool__(self) -> bool:
        n = self.numel()
        if n == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        if n > 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    def __len__(self) -> int:
        if not self._node.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._node.shape[0]

    def __iter__(self):
        if not self._node.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._node.shape[0]))

    def __array__(self, dtype=None, copy=None):
        array = self._realize("printing it")
        return array.astype(dtype) if dtype is not None else array.copy()

    def __format__(self, spec: str) -> str:
        if self.dim() == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __repr__(self, *, tensor_contents=None) -> str:
        grad_fn = self._grad_fn
        return printing.tensor_repr(
            self._realize(), self.dtype,
            grad_fn_name=type(grad_fn).__name__ if grad_fn is not None else None,
            requires_grad=self._requires_grad,
        )

    __str__ = __repr__

    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol):
        raise TypeError("llgrad tensors are not picklable; use llgrad.save / numpy()")

    def __deepcopy__(self, memo):
        out = self.detach().clone()
        out._requires_grad = self._requires_grad
        return out


_LEGACY_NAMES = {
    "float32": "torch.FloatTensor", "float64": "torch.DoubleTensor", "int64": "torch.LongTensor",
    "int32": "torch.IntTensor", "bool": "torch.BoolTensor",
}


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def check_index(value) -> int:
    return operator.index(value)


__all__ = ["Tensor", "Size", "is_tensor", "grad_mode"]

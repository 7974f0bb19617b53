"""Backward nodes (`grad_fn` objects) and `AccumulateGrad`, named as PyTorch names them.

A backward node is derived from the IR node an op recorded: its class name
comes from the op table (`AddBackward0`), its VJP rule is the op's, and its
`next_functions` follow the op's sources. It keeps what the VJP needs
(`saves` in the op table) until a backward pass frees it, with the version
of each saved tensor so that later in-place changes are detected.
"""

from __future__ import annotations

import itertools
import weakref

from llgrad.runtime.pending import hold

_sequence = itertools.count()
_classes: dict[str, type] = {}

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


class Node:
    """Base of everything in `grad_fn` chains (torch.autograd.graph.Node)."""

    # Hook lists and metadata are made on first use: most nodes never have any.
    __slots__ = ("_seq", "_pre_hooks", "_post_hooks", "_metadata", "__weakref__")

    def __init__(self) -> None:
        self._seq = next(_sequence)
        self._pre_hooks = self._post_hooks = ()
        self._metadata = None

    def name(self) -> str:
        return type(self).__name__

    @property
    def metadata(self) -> dict:
        if self._metadata is None:
            self._metadata = {}
        return self._metadata

    def register_prehook(self, fn):
        """fn(grad_outputs) -> new grad_outputs or None, run before this node."""
        if not self._pre_hooks:
            self._pre_hooks = []
        self._pre_hooks.append(fn)
        return _RemovableHandle(self._pre_hooks, fn)

    def register_hook(self, fn):
        """fn(grad_inputs, grad_outputs) -> new grad_inputs or None, run after this node."""
        if not self._post_hooks:
            self._post_hooks = []
        self._post_hooks.append(fn)
        return _RemovableHandle(self._post_hooks, fn)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"


class _RemovableHandle:
    def __init__(self, hooks: list, fn) -> None:
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class SavedValue:
    """A value a VJP reads: the tensor (or Python number), and its version when saved."""

    __slots__ = ("value", "node", "counter", "version", "owner", "is_output", "__weakref__")

    def __init__(self, value, node, counter, owner, is_output: bool = False) -> None:
        self.value = value  # Tensor, weakref to the output Tensor, or a Python number
        self.node = node
        if node.buffer is None and node.srcs:  # live while the backward node keeps it: computed with the rest
            hold(self)
        self.counter = counter
        self.version = counter.value if counter is not None else 0
        self.owner = owner  # the grad_fn of the saved tensor (named in version errors), or None
        self.is_output = is_output

    def read(self):
        """The IR node a VJP reads: a saved source tensor's current value (a write through
        `.data` is seen, as in PyTorch), else the value as saved (a Python number: its param;
        an output: the node it was)."""
        if self.is_output:
            return self.node
        node = getattr(self.value, "_node", None)
        return self.node if node is None else node


class BackwardNode(Node):
    """The grad_fn of a tensor made by an op. Subclassed once per PyTorch name."""

    __slots__ = ("op", "attrs", "_saved", "_needs", "_src_shapes", "_src_dtypes", "_src_values",
                 "_freed", "_tensor_hooks", "_retain")

    multi_output = False  # (an output of a custom Function with several: autograd/custom.py)

    @property
    def next_functions(self) -> tuple:
        edges = self.op.edges
        values = self._src_values
        return tuple((values[i], 0) for i in (edges if edges is not None else range(len(values))))

    def __call__(self, *grads):
        raise RuntimeError("calling a grad_fn directly is not supported; use backward()")


class AccumulateGrad(Node):
    """Where gradients of a leaf tensor land: `variable.grad`."""

    __slots__ = ("_variable",)

    def __init__(self, variable) -> None:
        super().__init__()
        self._variable = variable

    @property
    def variable(self):
        return self._variable

    @property
    def next_functions(self) -> tuple:
        return ()


def node_class(name: str) -> type:
    cls = _classes.get(name)
    if cls is None:
        cls = _classes[name] = type(name, (BackwardNode,), {"__slots__": ()})
    return cls


def accumulator(tensor) -> AccumulateGrad:
    """The leaf's AccumulateGrad: the same object while anything holds it."""
    ref = tensor._accumulator
    acc = ref() if ref is not None else None
    if acc is None:
        acc = AccumulateGrad(tensor)
        tensor._accumulator = weakref.ref(acc)
    return acc


def edge_of(tensor):
    """The node gradients for `tensor` flow into, or None if it needs none."""
    if tensor._grad_fn is not None:
        return tensor._grad_fn
    if tensor._requires_grad:
        return accumulator(tensor)
    return None

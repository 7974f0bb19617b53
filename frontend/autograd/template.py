"""Backward templates: a plain `loss.backward()` over a graph seen before, without re-deriving it.

The backward pass of a graph depends only on the graph's structure: which ops, their
attributes, shapes and dtypes, which inputs need gradients, what each node saved (and which
saved values are the same value), and whether each leaf's `.grad` is None. The first
backward of a structure runs the engine and records the IR nodes it makes, in order, with
each source named by where it comes from (a node made earlier in the pass, a value a node
saved, a leaf's current gradient, a Python number). Later backwards of the same structure
replay that recording: the same nodes, made directly, in the same order, so the pending
segment (and the compiled program) is exactly the one the engine would have made. The walk
that finds the structure also checks what the engine would refuse (freed graphs, values
changed in place, hooks), and falls back to the engine, which raises or runs them.
"""

from __future__ import annotations

from collections import OrderedDict

from llgrad.compiler.graph import Node
from llgrad.compiler.ops import param
from llgrad.runtime import pending

from ..tensor import Tensor
from .function import AccumulateGrad

MAX_TEMPLATES = 1024
_templates: OrderedDict = OrderedDict()  # structure key -> _Template, least recently used first


class _Template:
    """A recorded backward pass: node-making steps and what lands in which leaf's .grad."""

    __slots__ = ("steps", "grads")

    def __init__(self, steps: list, grads: list) -> None:
        self.steps = steps  # ("p", value) | (op, attrs, shape, dtype, source refs)
        self.grads = grads  # (leaf index, fresh?, ref)


def walk(root: Tensor, gradient: Tensor | None):
    """(key, fns in the engine's order, value refs) of the graph behind `root` (backpropagating
    `gradient`, None for 1), or None where the engine must run it (hooks, a freed graph, a saved
    value changed in place, a gradient of the wrong shape...)."""
    first = root._grad_fn
    if first is None:
        return None
    refs: dict = {}  # id(node) -> ("r",) | ("s", fn index, key) | ("g", fn index): first place read
    seed = None
    if gradient is not None:
        node = gradient._node
        if node.shape != root._node.shape:
            return None
        seed = (node.dtype, node.promotion_kind(), _identity(refs, node, ("r",)))
    found = {id(first): first}
    stack = [first]
    while stack:
        fn = stack.pop()
        if type(fn) is AccumulateGrad:
            continue
        for nxt in fn._src_values:
            if type(nxt) is tuple:  # an output of a multi-output custom Function
                return None
            if nxt is not None and id(nxt) not in found:
                found[id(nxt)] = nxt
                stack.append(nxt)
    order = sorted(found.values(), key=_seq, reverse=True)  # the engine's order
    position = {id(fn): i for i, fn in enumerate(order)}
    parts = []
    for i, fn in enumerate(order):
        if fn._pre_hooks or fn._post_hooks:
            return None
        if type(fn) is AccumulateGrad:
            leaf = fn.variable
            if leaf._hooks:
                return None
            grad = leaf._grad
            if grad is None:
                parts.append(None)
                continue
            node = grad._node
            parts.append((node.shape, node.dtype, node.promotion_kind(), _identity(refs, node, ("g", i))))
            continue
        if fn._freed or fn._tensor_hooks or fn._retain is not None or fn.op is None:
            return None  # (op None: a custom Function, whose backward is the user's code)
        saved = []
        for key, value in (fn._saved or {}).items():
            if value.counter is not None and value.counter.value != value.version:
                return None  # the engine raises "modified by an inplace operation"
            node = value.read()
            same = _identity(refs, node, ("s", i, key))
            saved.append((key, node.shape, node.dtype, node.promotion_kind(), same))
        edges = tuple(-1 if n is None else position[id(n)] for n in fn._src_values)
        parts.append((fn.op.name, tuple(fn.attrs.items()), fn._needs, fn._src_shapes, fn._src_dtypes,
                      edges, tuple(saved)))
    key = (root._node.shape, root._node.dtype, seed, tuple(parts))
    return key, order, refs


def _seq(fn) -> int:
    return fn._seq


def _identity(refs: dict, node: Node, ref: tuple):
    """The ref of the first place `node` was seen (so the key tells shared values apart)."""
    return refs.setdefault(id(node), ref)


def lookup(key) -> _Template | None:
    t = _templates.get(key)
    if t is not None:
        _templates.move_to_end(key)
    return t


def store(key, recorded: list, refs: dict, grads: list) -> None:
    """Keep what a pass recorded as the template of `key`, if every source it read is named."""
    made: dict = {}
    steps = []
    for kind, node, srcs in recorded:
        if kind == "p":
            made[id(node)] = ("t", len(steps))
            steps.append(("p", node.value))
            continue
        names = []
        for s in srcs:
            name = made.get(id(s)) or refs.get(id(s))
            if name is None:
                return  # read something the structure does not name: no template
            names.append(name)
        made[id(node)] = ("t", len(steps))
        steps.append((node.op, node.attrs, node.shape, node.dtype, tuple(names)))
    out = []
    for leaf_index, fresh, node in grads:
        name = made.get(id(node)) or refs.get(id(node))
        if name is None:
            return
        out.append((leaf_index, fresh, name))
    _templates[key] = _Template(steps, out)
    while len(_templates) > MAX_TEMPLATES:
        _templates.popitem(last=False)


def replay(t: _Template, order: list, gradient: Tensor | None, loc) -> list[Tensor]:
    """Make the recorded nodes again for this graph; set the leaves' .grad; return them."""
    made: list = []
    seed = None if gradient is None else gradient._node
    seg = pending.current()
    for step in t.steps:
        if step[0] == "p":
            made.append(param(step[1]))
            continue
        op, attrs, shape, dtype, names = step
        node = Node(op, tuple([_resolve(n, made, order, seed) for n in names]), attrs, shape, dtype)
        node.backward = True
        node.loc = loc
        seg.record(node)
        made.append(node)
    touched = []
    for leaf_index, fresh, name in t.grads:
        leaf = order[leaf_index].variable
        node = _resolve(name, made, order, seed)
        if fresh:
            leaf._grad = Tensor._from_node(node)
        else:
            leaf._grad._set_node(node)
        touched.append(leaf._grad)
    return touched


def _resolve(name: tuple, made: list, order: list, seed: Node | None) -> Node:
    kind = name[0]
    if kind == "t":
        return made[name[1]]
    if kind == "r":
        return seed
    if kind == "s":
        return order[name[1]]._saved[name[2]].read()
    return order[name[1]].variable._grad._node


"""The backward pass: walk grad_fn nodes in reverse order, emitting each op's VJP as IR.

Nothing is computed while walking: each VJP rule (from the op table) records
IR ops, so the gradients are lazy tensors whose graph is the backward IR.
At the end, all gradients that land somewhere (.grad of leaves, retained
grads, or the results of autograd.grad) are realized together, in one
compiled program with whatever forward values they need.
"""

from __future__ import annotations

import heapq

from llgrad.compiler.ops.movement import sum_to
from llgrad.runtime import pending, realize
from llgrad.runtime.executor import deferring

from .. import dispatch, trace_state
from ..dispatch import EMIT, NODES, apply
from ..tensor import Tensor
from . import grad_mode, template
from .function import FREED_MESSAGE, AccumulateGrad, BackwardNode, edge_of


class _Ctx:
    """What a VJP rule sees: saved sources and output, attrs, which grads are needed."""

    __slots__ = ("srcs", "out", "attrs", "needs", "src_shapes", "src_dtypes")


def _check_version(saved, fn) -> None:
    if saved.counter is not None and saved.counter.value != saved.version:
        node = saved.node
        kind = _TYPE_NAMES.get(node.dtype.name, node.dtype.name)
        where = (f", which is output 0 of {saved.owner.name()}," if saved.owner is not None else "")
        if saved.is_output:
            where = f", which is output 0 of {fn.name()},"
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: [{kind} {list(node.shape)}]{where} is at version {saved.counter.value}; "
            f"expected version {saved.version} instead. Hint: enable anomaly detection to find the "
            "operation that failed to compute its gradient, with "
            "torch.autograd.set_detect_anomaly(True)."
        )


_TYPE_NAMES = {"float32": "torch.FloatTensor", "float64": "torch.DoubleTensor",
               "int64": "torch.LongTensor", "int32": "torch.IntTensor", "bool": "torch.BoolTensor"}


def _unpack(fn: BackwardNode, on_nodes: bool) -> _Ctx:
    """The VJP's view of what `fn` saved: tensors (create_graph) or their IR nodes."""
    saves = fn.op.saved(fn.attrs)
    if fn._freed and saves and any(fn._needs[i] and saves.get(i) for i in range(len(fn._needs))):
        raise RuntimeError(FREED_MESSAGE)
    ctx = _Ctx()
    ctx.attrs = fn.attrs
    ctx.needs = fn._needs
    ctx.src_shapes = fn._src_shapes
    ctx.src_dtypes = fn._src_dtypes
    srcs = [None] * len(fn._needs)
    out = None
    for key, saved in (fn._saved or {}).items():
        _check_version(saved, fn)
        if on_nodes:
            if key == "out":
                out = saved.node
            else:
                srcs[key] = saved.read()
        elif key == "out":
            t = saved.value()
            if t is None or t._node is not saved.node:
                t = Tensor._from_node(saved.node)
                t._grad_fn, t._requires_grad = fn, True
            out = t
        else:
            srcs[key] = saved.value
    ctx.srcs = srcs
    ctx.out = out
    return ctx


def _collect(roots: list) -> dict:
    """Number of incoming gradient edges of every node reachable from the roots."""
    deps: dict = {}
    stack = [r for r in roots]
    seen = set()
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        for nxt, _ in _edges(fn):
            if nxt is not None:
                deps[nxt] = deps.get(nxt, 0) + 1
                stack.append(nxt)
    return deps


def _edges(fn) -> list:
    if isinstance(fn, BackwardNode):
        return [(e[0] if type(e) is tuple else e, i) for i, e in enumerate(fn._src_values)]
    return []


class _Pass:
    """How one backward pass emits its gradients: as bare IR nodes (the usual case), or as
    tensors with their own autograd history when the pass is itself differentiated."""

    __slots__ = ("emit", "on_nodes", "grads_made")

    def __init__(self, create_graph: bool, grads_made: list | None = None) -> None:
        self.on_nodes = not create_graph
        self.emit = NODES if self.on_nodes else EMIT
        self.grads_made = grads_made  # (AccumulateGrad, fresh?, node) as .grad is set: templates

    def node(self, g):
        return g if self.on_nodes else g._node

    def tensor(self, g) -> Tensor:
        """A gradient as a tensor (for hooks, .grad, autograd.grad's results)."""
        return Tensor._from_node(g, owned=False) if self.on_nodes else g

    def value(self, t: Tensor):
        """A tensor (a hook's result) as a gradient of this pass."""
        return t._node if self.on_nodes else t

    def add(self, a, b):
        return b if a is None else self.emit.add(a, b)


def run_graph(roots: list[Tensor], seeds: list, retain_graph: bool, create_graph: bool,
              capture: dict | None = None, accumulate_into: set | None = None,
              compute: bool = True, grads_made: list | None = None) -> None:
    """Propagate `seeds` (from `_seeds`) from `roots` to the leaves.

    capture: {edge node: None} to receive the gradient arriving at each node
    (autograd.grad) instead of accumulating into .grad, as a tensor; accumulate_into
    limits which leaves get .grad (backward(inputs=...)); compute=False leaves the
    results as pending graphs (for printing the backward IR).
    """
    p = _Pass(create_graph, grads_made)
    start_fns = [edge_of(r) for r in roots]
    deps = _collect(start_fns)
    grads: dict = {}
    for root, fn, g in zip(roots, start_fns, seeds):
        if isinstance(fn, BackwardNode) and fn.multi_output:  # output `nr` of a custom Function
            slots = grads.setdefault(fn, [None] * len(fn.outputs))
            nr = fn.output_nr[id(root)]
            slots[nr] = p.add(slots[nr], g)
        else:
            grads[fn] = p.add(grads.get(fn), g)
    ready = []
    for fn in dict.fromkeys(start_fns):
        if deps.get(fn, 0) == 0:
            heapq.heappush(ready, (-fn._seq, id(fn), fn))
    executed = []
    touched: list[Tensor] = []
    dispatch.enter_backward(1)
    dispatch.set_backward_loc(dispatch._user_loc())
    try:
        with grad_mode.set_grad_enabled(create_graph):
            while ready:
                _, _, fn = heapq.heappop(ready)
                g = grads.pop(fn, None)
                if g is not None and type(g) is not list:  # (a list: a multi-output custom Function's)
                    g = _run_pre_hooks(p, fn, g, touched)
                if capture is not None and fn in capture:
                    capture[fn] = None if g is None else p.tensor(g)
                    if isinstance(fn, AccumulateGrad):
                        continue
                if isinstance(fn, AccumulateGrad):
                    if capture is None and (accumulate_into is None or fn in accumulate_into):
                        _accumulate(p, fn, g, touched)
                    continue
                executed.append(fn)
                outs = _apply_vjp(p, fn, g) if g is not None else [None] * len(fn._src_values)
                if fn._post_hooks and type(g) is not list:
                    outs = _run_post_hooks(p, fn, outs, g)
                for nxt, gi in zip(fn._src_values, outs):
                    if nxt is None:
                        continue
                    if type(nxt) is tuple:  # output `nr` of a custom Function with several
                        nxt, nr = nxt
                        if gi is not None:
                            slots = grads.setdefault(nxt, [None] * len(nxt.outputs))
                            slots[nr] = p.add(slots[nr], gi)
                    elif gi is not None:
                        grads[nxt] = p.add(grads.get(nxt), gi)
                    deps[nxt] -= 1
                    if deps[nxt] == 0:
                        heapq.heappush(ready, (-nxt._seq, id(nxt), nxt))
                if compute and len(pending.current()) > pending.MAX_PENDING and not deferring():
                    # The bound on a pending graph: compute the gradients in flight so far.
                    realize([p.node(g) for g in grads.values() if g is not None])
    finally:
        dispatch.enter_backward(-1)
    g = outs = None  # no stray reference keeps an intermediate gradient alive past the pass
    if not retain_graph:
        for fn in executed:
            fn._saved = None
            fn._freed = True
    if compute:
        # The outputs backpropagated from are computed in the same program (users print the loss).
        targets = [t._node for t in touched] + [r._node for r in roots]
        if capture is not None:
            targets += [g._node for g in capture.values() if g is not None]
        realize(targets)


def _run_pre_hooks(p: _Pass, fn, g, touched):
    hooks = fn._tensor_hooks if isinstance(fn, BackwardNode) else fn.variable._hooks
    for hook in hooks or ():
        r = hook(p.tensor(g))
        if r is not None:
            g = p.value(r)
    if isinstance(fn, BackwardNode) and fn._retain is not None:
        t = fn._retain()
        if t is not None and t._retains_grad:
            total = g if t._grad is None else p.emit.add(p.value(t._grad), g)
            t._grad = Tensor._from_node(p.node(total))
            touched.append(t._grad)
    for hook in fn._pre_hooks:
        r = hook((p.tensor(g),))
        if r is not None:
            g = p.value(r[0])
    return g


def _run_post_hooks(p: _Pass, fn, outs: list, g) -> list:
    for post in fn._post_hooks:
        r = post(tuple(None if o is None else p.tensor(o) for o in outs), (p.tensor(g),))
        if r is not None:
            outs = [None if o is None else p.value(o) for o in r]
    return outs


def _apply_vjp(p: _Pass, fn: BackwardNode, g) -> list:
    if fn.op is None:  # a custom autograd.Function: its own backward, on tensors
        return fn.run_backward(p, g)
    ctx = _unpack(fn, p.on_nodes)
    e = p.emit
    raw = fn.op.vjp(e, g, ctx)
    out = []
    for i, gi in enumerate(raw):
        if gi is None or not fn._needs[i]:
            out.append(None)
            continue
        gi = sum_to(e, gi, fn._src_shapes[i])
        if gi.dtype is not fn._src_dtypes[i]:
            gi = e.cast(gi, dtype=fn._src_dtypes[i])
        out.append(gi)
    return out


def _accumulate(p: _Pass, fn: AccumulateGrad, g, touched: list) -> None:
    if g is None:
        return
    leaf = fn.variable
    tracer = trace_state.active()
    if tracer is not None:
        tracer.grad_event(leaf, "fresh" if leaf._grad is None or not p.on_nodes else "inplace")
    fresh = leaf._grad is None
    if fresh:
        # A storage of its own: in-place ops on .grad must not reach the tensor it came from.
        leaf._grad = Tensor._from_node(g) if p.on_nodes else g
    elif not p.on_nodes:
        leaf._grad = apply("add", leaf._grad, g)
    else:
        # In place, like PyTorch: a reference to .grad sees the new value.
        g = p.emit.add(leaf._grad._node, g)
        leaf._grad._set_node(g)
    if p.grads_made is not None:
        p.grads_made.append((fn, fresh, g))
    touched.append(leaf._grad)


def _seed(e, output: Tensor, gradient, index: int):
    if gradient is None:
        if output.numel() != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape "
                               f"{list(output.shape)}")
        return e.expand(e.cast(1.0, dtype=output.dtype), shape=tuple(output.shape))
    if not isinstance(gradient, Tensor):
        from ..creation import tensor

        gradient = tensor(gradient, dtype=output.dtype)
    if tuple(gradient.shape) != tuple(output.shape):
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{index}] has a shape of {gradient.shape} and "
            f"output[{index}] has a shape of {output.shape}."
        )
    g = gradient if e is EMIT else gradient._node
    if gradient.dtype is not output.dtype:
        g = e.cast(g, dtype=output.dtype)
    return g


def _seeds(outputs: list[Tensor], grads: list, create_graph: bool) -> list:
    """The gradients backpropagated from `outputs`: tensors if create_graph, else IR nodes."""
    e = EMIT if create_graph else NODES
    dispatch.enter_backward(1)
    dispatch.set_backward_loc(dispatch._user_loc())
    try:
        with grad_mode.set_grad_enabled(create_graph):
            return [_seed(e, t, g, i) for i, (t, g) in enumerate(zip(outputs, grads))]
    finally:
        dispatch.enter_backward(-1)


def _check_roots(tensors: list[Tensor]) -> None:
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected a Tensor, got {type(t).__name__}")
        if not t._requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """torch.autograd.backward: accumulate gradients of `tensors` into leaves' .grad."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    grad_tensors = list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"grad can be implicitly created only for scalar outputs; got "
                           f"{len(grad_tensors)} gradients for {len(tensors)} tensors")
    _check_roots(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    if (len(tensors) == 1 and not create_graph and inputs is None and trace_state.active() is None
            and _by_template(tensors[0], grad_tensors[0], retain_graph)):
        return
    seeds = _seeds(tensors, grad_tensors, create_graph)
    limit = None
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        limit = {edge_of(t) for t in inputs}
    run_graph(tensors, seeds, retain_graph, create_graph, accumulate_into=limit)


def _by_template(root: Tensor, gradient, retain_graph: bool) -> bool:
    """root.backward(gradient) from the template of its graph's structure (recorded the first
    time). False where the engine must run instead (template.walk says when)."""
    if gradient is None:
        if root.numel() != 1:
            return False  # the engine raises
    elif not isinstance(gradient, Tensor):
        return False
    found = template.walk(root, gradient)
    if found is None:
        return False
    key, order, refs = found
    known = template.lookup(key)
    if known is None:  # the engine runs, and what it makes is kept as the template
        recorded: list = []
        made: list = []
        seg = pending.current()
        dispatch.set_recorder(recorded)
        try:
            seeds = _seeds([root], [gradient], False)
            run_graph([root], seeds, retain_graph, False, compute=False, grads_made=made)
        finally:
            dispatch.set_recorder(None)
        if pending.current() is seg:  # no bound-triggered realization cut the pass in two
            index = {id(fn): i for i, fn in enumerate(order)}
            template.store(key, recorded, refs, [(index[id(fn)], fresh, g) for fn, fresh, g in made])
        touched = [fn.variable._grad for fn, _, _ in made]
    else:
        touched = template.replay(known, order, gradient, dispatch._user_loc())
        if not retain_graph:
            for fn in order:
                if type(fn) is not AccumulateGrad:
                    fn._saved = None
                    fn._freed = True
    realize([t._node for t in touched] + [root._node])
    return True


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """torch.autograd.grad: the gradients of `outputs` with respect to `inputs`."""
    single = isinstance(inputs, Tensor)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    _check_roots(outputs)
    for t in inputs:
        if not t._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    seeds = _seeds(outputs, grad_outputs, create_graph)
    targets = [edge_of(t) for t in inputs]
    capture = {fn: None for fn in targets}
    run_graph(outputs, seeds, retain_graph, create_graph, capture=capture)
    result = []
    for t, fn in zip(inputs, targets):
        g = capture[fn]
        if g is None:
            if materialize_grads:
                from ..creation import zeros_like

                g = zeros_like(t)
            elif not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
        elif not create_graph:
            g = Tensor._from_node(g._node)
        result.append(g)
    return tuple(result)

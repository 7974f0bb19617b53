"""llgrad.compile: a whole step (forward, backward, optimizer update) as one native program.

The first call with a given signature (tensor shapes, dtypes and requires_grad;
Python numbers by value; grad mode) runs `fn` in trace mode: ops record IR as
always, but nothing is computed. What the step changes is recorded instead:
every storage given a new value (parameters, optimizer buffers, in-place
gradients), every `.grad` set, and the returned tensors. At the end all of
those are computed by one program, and the step is kept as a replay plan:
where each program input comes from (an argument, a parameter's current
value, a gradient) and where each output goes.

Later calls with the same signature skip Python entirely: gather the current
buffers, one native call (both cores on large steps), write the results
back. Guards check what the plan assumed (a gradient that was None, a
buffer's shape, and what compile_guards.py lists: module modes, globals,
parameters, optimizer state, argument aliasing); when one fails, or the
signature is new, `fn` is traced again, with the reason logged (logger
"llgrad.compile"). A signature keeps the plans of its earlier traces (a model
switched back to train() replays the first again); a function keeps at most
LLGRAD_MAX_PROGRAMS plans, the least recently used dropped first.

Inside a compiled function, reading a tensor's value (`if loss > 0`,
`.item()`, `print(x)`) cannot be captured by one program and raises an error
naming the line. Python numbers computed inside `fn` are fixed at trace time;
pass changing numbers as arguments (a change retraces, but reuses the compiled
program: numbers are run-time parameters). Optimizer hyperparameters read
through `Optimizer.param_groups` are re-read at every replay.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict

from llgrad.compiler import dtypes
from llgrad.compiler.ops import input_node
from llgrad.runtime import executor

from . import compile_guards, trace_state
from .autograd import grad_mode
from .tensor import Storage, Tensor
from .trace_state import Live, LiveScalar, TraceError

log = logging.getLogger("llgrad.compile")


class _Source:
    """Where a program input comes from at replay."""

    __slots__ = ("kind", "ref", "shape", "dtype")

    def __init__(self, kind: str, ref, node) -> None:
        self.kind, self.ref, self.shape, self.dtype = kind, ref, node.shape, node.dtype

    def buffer(self, args: list):
        if self.kind == "const":
            return self.ref
        if self.kind == "arg":  # the argument tensor's value (a view is computed first)
            node = args[self.ref]._node
        elif self.kind == "arg_storage":
            node = args[self.ref]._storage.node
        elif self.kind == "storage":
            node = self.ref.node
        else:  # "grad": the gradient tensor of a leaf, whichever it is now
            grad = self.ref._grad
            if grad is None:
                return None
            node = grad._storage.node
        if node.shape != self.shape or node.dtype is not self.dtype:
            return None
        if node.buffer is None:  # changed lazily outside the step: compute it first
            executor.realize([node])
        return node.buffer


_STALE = object()  # replay found a buffer that no longer fits the plan


class _Plan:
    """One traced step: its program, where inputs come from and where outputs go."""

    def __init__(self, prog, sources, params, sinks, results, guards, tracer, checks=()) -> None:
        self.prog, self.sources, self.params = prog, sources, params
        self.checks = checks  # (output of the least index, of the greatest, IndexBounds)
        self.sinks, self.results, self.guards = sinks, results, guards
        self.scalar_guards, self.hooks = tracer.scalar_guards, tracer.replay_hooks
        self.object_guards: list = []  # compile_guards: names, modules, optimizers (set by _finish)
        self.alias_guard = None
        self.made_leaves: list[int] = []  # tensor arguments the step set requires_grad on

    def failed_guard(self, args: list) -> str | None:
        for leaf, want_none in self.guards:
            if (_leaf(leaf, args)._grad is None) != want_none:
                return f"a parameter's .grad was {'set' if want_none else 'None'} before the call"
        for recompute, seen in self.scalar_guards:
            if recompute() != seen:
                return "a number the step branched on (an optimizer setting, say) changed"
        for guard in self.object_guards:
            reason = guard.check()
            if reason is not None:
                return reason
        return self.alias_guard.check_args(args) if self.alias_guard is not None else None

    def replay(self, args: list):
        buffers = []
        for s in self.sources:
            buf = s.buffer(args)
            if buf is None:
                return _STALE
            buffers.append(buf)
        for hook in self.hooks:
            hook()
        values = [p.current() if isinstance(p, Live) else p for p in self.params]
        outs = executor.run_program(self.prog, buffers, values)
        _check_indices([(outs[lo].array, outs[hi].array, bounds) for lo, hi, bounds in self.checks])
        for i in self.made_leaves:
            args[i]._requires_grad = True
        for (kind, ref), buf in zip(self.sinks, outs):
            if buf is None or kind is None:
                continue
            node = input_node(buf, buf.shape, dtypes.from_numpy(buf.dtype))
            if kind in ("storage", "arg_storage"):
                storage = ref if kind == "storage" else args[ref]._storage
                old = storage.node
                storage.node = node
                _bump(storage, old)
            elif kind == "grad_fresh":
                _leaf(ref, args)._grad = Tensor._from_node(node)
            elif kind == "grad_inplace":
                ref._grad._set_node(node)
        return _rebuild(self.results, outs)


def _leaf(ref, args: list) -> Tensor:
    """A leaf whose .grad a step sets: a tensor, or the position of the argument it was."""
    return args[ref] if isinstance(ref, int) else ref


def _check_indices(checks: list) -> None:
    """Raise the IndexError of the first indices out of bounds (before a replay stores anything)."""
    for lo, hi, bounds in checks:
        error = bounds.error(int(lo), int(hi))
        if error is not None:
            raise error


def _bump(storage: Storage, old_node) -> None:
    """Storage writes bump the version of the tensor that holds it (its owner)."""
    owner = old_node.owner() if old_node.owner is not None else None
    if owner is not None and owner._storage is storage:
        owner._vc.value += 1
        storage.node.owner = old_node.owner


def _rebuild(template, outs):
    kind = template[0]
    if kind == "tensor":
        buf = outs[template[1]]
        return Tensor._from_node(input_node(buf, buf.shape, dtypes.from_numpy(buf.dtype)))
    if kind in ("tuple", "list"):
        items = [_rebuild(t, outs) for t in template[1]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: _rebuild(t, outs) for k, t in template[1]}
    return template[1]


def live(mapping, key):
    """mapping[key], re-read at every replay when a trace is recording (else the plain value)."""
    value = mapping[key]
    if trace_state.active() is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return LiveScalar(float(value), lambda: mapping[key])


class LiveGroup(dict):
    """An optimizer parameter group whose numbers are live while a step is traced."""

    def __init__(self, group: dict) -> None:
        super().__init__(group)
        self._group = group

    def __getitem__(self, key):
        return live(self._group, key)


class CompiledFunction:
    def __init__(self, fn, max_recompiles: int | None = None) -> None:
        self.fn = fn
        self.max_recompiles = max_recompiles
        self.plans: OrderedDict = OrderedDict()  # signature -> its plans, newest first; LRU order
        self.traces = 0
        self.reasons: list[str] = []
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        tensors = _tensors(args, kwargs)
        key = _signature(args, kwargs, tensors)
        plans = self.plans.get(key)
        reason = None
        if plans is None:
            reason = self._why_new(key)
        else:
            self.plans.move_to_end(key)
            for plan in plans:
                failed = plan.failed_guard(tensors)
                if failed is None:
                    result = plan.replay(tensors)
                    if result is not _STALE:
                        return result
                    failed = "a buffer the step reads changed shape or dtype, or a gradient went away"
                reason = reason or failed
        return self._trace(key, args, kwargs, reason)

    def _keep(self, key, plan: _Plan) -> None:
        """Keep `plan` first among its signature's; past LLGRAD_MAX_PROGRAMS plans in all, drop the
        least recently used (their programs go with them, unless the program cache holds them)."""
        plans = self.plans.setdefault(key, [])
        plans.insert(0, plan)
        self.plans.move_to_end(key)
        bound = executor.max_programs()
        while sum(len(p) for p in self.plans.values()) > bound:
            oldest = next(iter(self.plans))
            self.plans[oldest].pop()
            if not self.plans[oldest]:
                del self.plans[oldest]

    def _why_new(self, key) -> str:
        if not self.plans:
            return "first call"
        nearest = min(self.plans, key=lambda k: _distance(k, key))
        return "new signature: " + _describe_change(nearest, key)

    def _trace(self, key, args, kwargs, reason: str):
        if self.traces and self.max_recompiles is not None and self.traces > self.max_recompiles:
            raise RuntimeError(
                f"llgrad.compile: {self.__name__} was traced {self.traces} times, more than "
                f"max_recompiles={self.max_recompiles}; last reason: {reason}; earlier: {self.reasons}"
            )
        self.traces += 1
        self.reasons.append(reason)
        log.info("tracing %s (%s)", getattr(self.fn, "__name__", "fn"), reason)
        if trace_state.active() is not None:
            raise TraceError("llgrad.compile: nested compiled functions are not supported")
        t = trace_state.Tracer(getattr(self.fn, "__name__", "fn"))
        deferred: list = []
        leaves_before = [a.requires_grad for a in _tensors(args, kwargs)]
        trace_state.set_active(t)
        executor.set_deferral(deferred.extend)
        try:
            result = self.fn(*args, **kwargs)
        finally:
            trace_state.set_active(None)
            executor.set_deferral(None)
        tensors = _tensors(args, kwargs)
        plan = _finish(t, deferred, result, tensors)
        plan.object_guards = _object_guards(self.fn, t)
        plan.made_leaves = [i for i, (a, was) in enumerate(zip(tensors, leaves_before))
                            if a.requires_grad and not was and a._grad_fn is None]
        # An argument that is (or stops being) a tensor the step also reaches otherwise makes
        # another program: the trace read and wrote that tensor as the argument, or apart from it.
        captured = compile_guards.captured_storages(plan.object_guards)
        plan.alias_guard = compile_guards.ArgumentAliasGuard(captured, tensors) if captured else None
        self._keep(key, plan)
        return result


def _tensors(args, kwargs) -> list:
    """The tensor arguments, flattened in a fixed order (the signature's)."""
    out = []

    def walk(x):
        if isinstance(x, Tensor):
            out.append(x)
        elif isinstance(x, (tuple, list)):
            for item in x:
                walk(item)
        elif isinstance(x, dict):
            for k in sorted(x):
                walk(x[k])

    walk(args)
    walk(kwargs)
    return out


def _finish(t: trace_state.Tracer, deferred: list, result, args: list) -> _Plan:
    """Compute everything the step produced in one program; keep the replay plan."""
    targets, sinks = [], []
    arg_of = {id(a._storage): i for i, a in enumerate(args)}
    for storage, _ in t.storages.values():
        if storage.node.buffer is None:
            targets.append(storage.node)
            i = arg_of.get(id(storage))
            sinks.append(("storage", storage) if i is None else ("arg_storage", i))
    guards = []
    arg_at = {id(a): i for i, a in enumerate(args)}
    for leaf, kind in t.grads.values():
        ref = arg_at.get(id(leaf), leaf)  # an argument's gradient goes to each call's argument
        if kind == "inplace" and ref is not leaf:
            raise TraceError(f"llgrad.compile: {t.name} accumulates a gradient into the .grad of its tensor "
                             f"argument {ref}, which has one already: set that .grad to None before the "
                             "call, or don't compile the function")
        if kind in ("fresh", "inplace"):  # what the step did depended on whether .grad was None
            guards.append((ref, kind == "fresh"))
        grad = leaf._grad
        if kind != "inplace" and grad is not None and grad._storage.node.buffer is None:
            targets.append(grad._storage.node)
            sinks.append(("grad_fresh", ref))
    template = _template(result, targets, sinks)
    checks = []
    for lo, hi, bounds in t.index_checks:
        checks.append((len(targets), len(targets) + 1, bounds))
        targets += [lo, hi]
        sinks += [(None, None), (None, None)]
    for node in deferred:  # asked for inside the step (losses backpropagated from, say)
        if node.buffer is None and all(node is not n for n in targets):
            targets.append(node)
            sinks.append((None, None))
    if not targets:
        return _Plan(_NoProgram(), [], [], [], template, guards, t)
    prog, inputs, params, outputs = executor.run_targets(targets)
    # Indices computed inside the step were not known before this run (the step's updates are made).
    _check_indices([(targets[lo].buffer.array, targets[hi].buffer.array, b) for lo, hi, b in checks])
    sources = [_source_of(n, t, args) for n in inputs]
    sinks += [(None, None)] * (len(outputs) - len(sinks))  # live values the program also stores
    return _Plan(prog, sources, [p.value for p in params], sinks, template, guards, t, checks)


def _object_guards(fn, t: trace_state.Tracer) -> list:
    """Guards on what the trace read besides tensors (compile_guards.py): the modules and
    optimizers it used, and the names its Python code (and their forward()s) read."""
    observed = list(t.observed.values())
    roots = [fn] + [type(g.module).forward for g in observed if isinstance(g, compile_guards.ModuleGuard)]
    return observed + compile_guards.name_guards(roots)


class _NoProgram:
    def run(self, buffers, params):
        return []


def _source_of(node, t: trace_state.Tracer, args: list) -> _Source:
    for i, a in enumerate(args):  # arguments first: each call brings its own
        if a._node is node:
            return _Source("arg", i, node)
        old = t.storages.get(id(a._storage), (None, a._storage.node))[1]
        if old is node:
            return _Source("arg_storage", i, node)
    for storage, old in t.storages.values():
        if old is node:
            return _Source("storage", storage, node)
    for leaf, kind in t.grads.values():
        if kind == "inplace":
            grad = leaf._grad
            if grad is not None and t.storages.get(id(grad._storage), (None, None))[1] is node:
                return _Source("grad", leaf, node)
    owner = node.owner() if node.owner is not None else None
    if owner is not None and owner._storage.node is node:
        return _Source("storage", owner._storage, node)
    return _Source("const", node.buffer, node)


def _template(result, targets: list, sinks: list):
    """The shape of `result` with each tensor replaced by its program output position."""
    if isinstance(result, Tensor):
        node = result._node
        for i, n in enumerate(targets):
            if n is node:
                return ("tensor", i)
        targets.append(node)
        sinks.append((None, None))
        return ("tensor", len(targets) - 1)
    if isinstance(result, (tuple, list)):
        kind = "tuple" if isinstance(result, tuple) else "list"
        return (kind, [_template(r, targets, sinks) for r in result])
    if isinstance(result, dict):
        return ("dict", [(k, _template(v, targets, sinks)) for k, v in result.items()])
    return ("value", result)


def _signature(args, kwargs, tensors: list) -> tuple:
    """Shapes, dtypes, requires_grad, Python values, grad mode, and which tensor arguments are
    one tensor (or views of one): a step traced on distinct tensors computes other things."""
    def sig(x):
        if isinstance(x, Tensor):
            return ("T", tuple(x.shape), x.dtype.name, x.requires_grad)
        if isinstance(x, (tuple, list)):
            return (type(x).__name__, tuple(sig(i) for i in x))
        if isinstance(x, dict):
            return ("dict", tuple((k, sig(v)) for k, v in sorted(x.items())))
        if isinstance(x, (bool, int, float, str, type(None))):
            return (type(x).__name__, x)
        return ("obj", id(x))

    first: dict = {}
    aliases = tuple(first.setdefault(id(t._storage), i) for i, t in enumerate(tensors)) \
        if len(tensors) > 1 else ()
    return (sig(args), sig(kwargs), grad_mode.is_grad_enabled(), aliases)


def _distance(a, b) -> int:
    return sum(x != y for x, y in zip(_flat(a), _flat(b))) + abs(len(_flat(a)) - len(_flat(b)))


def _flat(sig) -> list:
    out = []
    for item in sig if isinstance(sig, tuple) else (sig,):
        if isinstance(item, tuple) and item and item[0] == "T":
            out.append(item)
        elif isinstance(item, tuple):
            out.extend(_flat(item))
        else:
            out.append(item)
    return out


def _describe_change(old, new) -> str:
    if old[:3] == new[:3] and old[3] != new[3]:
        for i, (x, y) in enumerate(zip(old[3], new[3])):
            if x != y:
                if y != i:
                    return f"tensor arguments {y} and {i} are now one tensor (aliased)"
                return f"tensor argument {i} is no longer the same tensor as argument {x} (aliasing)"
    a, b = _flat(old), _flat(new)
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            if isinstance(x, tuple) and isinstance(y, tuple) and x[:1] == y[:1] == ("T",):
                return f"tensor argument {i}: shape/dtype/requires_grad {x[1:]} -> {y[1:]}"
            return f"argument {i}: {x!r} -> {y!r}"
    return "different number of arguments"


def compile(fn=None, *, max_recompiles: int | None = None):
    """Compile a step function (decorator or call). See the module docstring."""
    if fn is None:
        return lambda f: CompiledFunction(f, max_recompiles)
    return CompiledFunction(fn, max_recompiles)

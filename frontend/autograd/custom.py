"""torch.autograd.Function: an op whose forward and backward are the user's own Python code.

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)      # y.grad_fn is an ExpBackward node; backward() calls Exp.backward

The forward runs with grad recording off (its ops are recorded lazily like any others and
fuse into the step's program); the outputs get a backward node of their own, named
`<Function>Backward` as PyTorch names it. The backward runs when the engine reaches that
node, on tensors, with grad recording on when the backward pass is itself differentiated
(create_graph=True): so double backward through a Function works.
"""

from __future__ import annotations

import weakref

from ..tensor import Tensor
from . import grad_mode
from .function import FREED_MESSAGE, BackwardNode, _sequence, accumulator


class FunctionCtx:
    """What forward and backward share: saved tensors and flags (torch.autograd.function's ctx)."""

    def __init__(self) -> None:
        self.needs_input_grad: tuple = ()
        self._saved: tuple | None = None
        self._versions: tuple = ()
        self._non_differentiable: set = set()
        self._node = None  # weakref to the backward node, once made
        self.materialize_grads = True

    def save_for_backward(self, *tensors) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self._saved = tensors
        self._versions = tuple(None if t is None else t._vc.value for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        node = self._node() if self._node is not None else None
        if node is not None and node._freed:
            raise RuntimeError(FREED_MESSAGE)
        if self._saved is None:
            return ()
        for i, (t, version) in enumerate(zip(self._saved, self._versions)):
            if t is not None and t._vc.value != version:
                name = type(node).__name__ if node is not None else "a custom Function"
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: saved tensor {i} of {name} is at version {t._vc.value}; "
                    f"expected version {version} instead.")
        return self._saved

    saved_variables = saved_tensors

    def mark_non_differentiable(self, *outputs) -> None:
        self._non_differentiable.update(id(o) for o in outputs)

    def mark_dirty(self, *tensors) -> None:
        raise NotImplementedError("llgrad does not implement torch.autograd.Function's ctx.mark_dirty "
                                  "(in-place custom functions): return a new tensor instead")

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class FunctionBackward(BackwardNode):
    """The backward node of a custom Function's outputs (a subclass per Function, named
    `<Function>Backward`)."""

    __slots__ = ("function", "ctx", "outputs", "output_nr", "n_args", "__dict__")
    multi_output = False

    @property
    def next_functions(self) -> tuple:
        return tuple(e if isinstance(e, tuple) else (e, 0) for e in self._src_values)

    def run_backward(self, p, g) -> list:
        """Call the user's backward on this pass's gradient(s); the gradients of the inputs,
        as values of the pass (engine._Pass)."""
        grads = list(g) if self.multi_output else [g]
        tensors = []
        for k, x in enumerate(grads):
            if x is not None:
                tensors.append(p.tensor(x))
            elif self.ctx.materialize_grads:
                from ..creation import zeros

                shape, dtype = self.outputs[k]
                tensors.append(zeros(shape, dtype=dtype))
            else:
                tensors.append(None)
        result = self.function.backward(self.ctx, *tensors)
        if not isinstance(result, tuple):
            result = (result,)
        name = type(self).__name__
        if len(result) < self.n_args or (len(result) > self.n_args and any(r is not None
                                                                            for r in result[self.n_args:])):
            raise RuntimeError(f"function {name} returned an incorrect number of gradients (expected "
                               f"{self.n_args}, got {len(result)})")
        out = []
        for i, r in enumerate(result[:self.n_args]):
            if r is None or not self._needs[i]:
                out.append(None)
                continue
            if not isinstance(r, Tensor):
                raise TypeError(f"function {name} returned a gradient different than None at position "
                                f"{i + 1}, but the corresponding forward input was not a Variable")
            shape, dtype = self._src_shapes[i], self._src_dtypes[i]
            if tuple(r.shape) != tuple(shape):
                from llgrad.compiler.ops.shapes import broadcast

                try:
                    if broadcast(tuple(r.shape), tuple(shape)) != tuple(r.shape):
                        raise RuntimeError
                except RuntimeError:
                    raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - got "
                                       f"{list(r.shape)} but expected shape compatible with {list(shape)}")\
                        from None
            value = p.value(r)
            from llgrad.compiler.ops.movement import sum_to

            value = sum_to(p.emit, value, shape)
            if value.dtype is not dtype:
                value = p.emit.cast(value, dtype=dtype)
            out.append(value)
        return out


_classes: dict = {}


def _node_class(function: type) -> type:
    cls = _classes.get(function)
    if cls is None:
        cls = _classes[function] = type(f"{function.__name__}Backward", (FunctionBackward,), {})
    return cls


class Function:
    """Base class of custom autograd operations: define `forward(ctx, *args)` (or `forward(*args)`
    with `setup_context(ctx, inputs, output)`) and `backward(ctx, *grad_outputs)` as
    staticmethods, and call `YourFunction.apply(*args)`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("Legacy autograd function with non-static forward method is deprecated. Please "
                           "use new-style autograd function with static forward method. (Example: "
                           "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        tracking = grad_mode.is_grad_enabled()
        ctx.needs_input_grad = tuple(tracking and isinstance(a, Tensor) and a.requires_grad for a in args)
        separate = cls.setup_context is not Function.setup_context
        with grad_mode.no_grad():
            if separate:
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(output, tuple)
        outputs = (output,) if single else output
        if not any(ctx.needs_input_grad):
            return output
        fn = _make_node(cls, ctx, args)
        results = []
        differentiable = []
        for o in outputs:
            if not isinstance(o, Tensor):
                results.append(o)
                continue
            t = Tensor._from_node(o._node)  # the output itself, with this node as its history
            if id(o) not in ctx._non_differentiable and o.dtype.is_floating_point:
                t._grad_fn, t._requires_grad = fn, True
                differentiable.append(t)
            results.append(t)
        fn.outputs = [(tuple(t.shape), t.dtype) for t in differentiable]
        # (by identity: only tensors whose grad_fn is this node are ever looked up)
        fn.output_nr = {id(t): k for k, t in enumerate(differentiable)}
        fn.multi_output = len(differentiable) > 1
        return results[0] if single else tuple(results)


def _make_node(function: type, ctx: FunctionCtx, args: tuple) -> FunctionBackward:
    fn = object.__new__(_node_class(function))
    fn._seq = next(_sequence)
    fn._pre_hooks = fn._post_hooks = ()
    fn._metadata = None
    fn.op = None
    fn.attrs = {}
    fn.function, fn.ctx, fn.n_args = function, ctx, len(args)
    fn._needs = ctx.needs_input_grad
    edges = []
    for a, needed in zip(args, fn._needs):
        if not needed:
            edges.append(None)
        elif a._grad_fn is not None:
            edges.append(edge_to(a))
        else:
            edges.append(accumulator(a))
    fn._src_values = tuple(edges)
    fn._src_shapes = tuple(tuple(a.shape) if isinstance(a, Tensor) else () for a in args)
    fn._src_dtypes = tuple(a.dtype if isinstance(a, Tensor) else None for a in args)
    fn._freed = False
    fn._tensor_hooks = None
    fn._retain = None
    fn._saved = None
    ctx._node = weakref.ref(fn)
    return fn


def edge_to(t: Tensor):
    """The edge a gradient of `t` flows along: its grad_fn, or (grad_fn, output number) for an
    output of a custom Function with several differentiable outputs."""
    fn = t._grad_fn
    if fn.multi_output:
        return fn, fn.output_nr[id(t)]
    return fn

"""torch.autograd.functional: Jacobians, Hessians and vector products of a function.

Each is built on autograd.grad. A Jacobian takes one backward pass per output element, each
seeded with a one-hot vector: the seed is data, not structure, so all the passes share one
compiled program.
"""

from __future__ import annotations

from ..tensor import Tensor
from . import grad_mode
from .engine import grad


def _as_tuple(x, what: str) -> tuple[bool, tuple]:
    if isinstance(x, Tensor):
        return True, (x,)
    if isinstance(x, (tuple, list)) and all(isinstance(t, Tensor) for t in x):
        return False, tuple(x)
    raise TypeError(f"The {what} given to the function must be either a Tensor or a tuple of Tensors but "
                    f"the given {what} is {type(x).__name__}.")


def _grad_inputs(inputs: tuple, create_graph: bool) -> tuple:
    """The inputs as tensors that require grad: fresh leaves with their values, or (create_graph)
    views that keep an input's own history, as PyTorch's functional API does."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(True)
                 for t in inputs)


def _grads(outputs, inputs: tuple, seeds, create_graph: bool, strict: bool, what: str) -> tuple:
    """d(outputs . seeds)/d inputs, zeros for inputs the outputs do not depend on (strict: error)."""
    pairs = [(o, s) for o, s in zip(outputs, seeds) if o.requires_grad]
    if not pairs:
        got = (None,) * len(inputs)
    else:
        got = grad([o for o, _ in pairs], inputs, [s for _, s in pairs], retain_graph=True,
                   create_graph=create_graph, allow_unused=True)
    out = []
    for i, (g, t) in enumerate(zip(got, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent of input {i}. "
                                   f"This is not allowed in strict mode{what}.")
            from ..creation import zeros_like

            g = zeros_like(t)
        out.append(g)
    return tuple(out)


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product."""
    single_in, inputs = _as_tuple(inputs, "inputs")
    with grad_mode.enable_grad():
        xs = _grad_inputs(inputs, create_graph)
        out = func(*xs)
        single_out, outs = _as_tuple(out, "outputs of the user-provided function")
        if v is None:
            if len(outs) != 1 or outs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function returns a "
                                   "single Tensor with a single element.")
            from ..creation import ones_like

            vs = (ones_like(outs[0]),)
        else:
            vs = _as_tuple(v, "v")[1]
        gs = _grads(outs, xs, vs, create_graph, strict, "")
    outs = outs if create_graph else tuple(o.detach() for o in outs)
    gs = gs if create_graph else tuple(g.detach() for g in gs)
    return (outs[0] if single_out else outs), (gs[0] if single_in else gs)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The Jacobian of func at inputs: out.shape + in.shape for each (output, input) pair."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    import numpy as np

    from ..creation import tensor, zeros
    from ..functional import reshape, stack

    single_in, inputs = _as_tuple(inputs, "inputs")
    with grad_mode.enable_grad():
        xs = _grad_inputs(inputs, create_graph)
        out = func(*xs)
        single_out, outs = _as_tuple(out, "outputs of the user-provided function")
        rows: list[list] = []
        for o in outs:
            per_input: list[list] = [[] for _ in xs]
            n = o.numel()
            for k in range(n):  # a one-hot seed is data: every pass runs the same program
                seed = tensor(np.eye(n, dtype=o.dtype.np)[k].reshape(tuple(o.shape)))
                gs = _grads([o], xs, [seed], create_graph, strict, "")
                for i, g in enumerate(gs):
                    per_input[i].append(g if create_graph else g.detach())
            rows.append([reshape(stack(gs_i) if gs_i else zeros(0), tuple(o.shape) + tuple(x.shape))
                         for gs_i, x in zip(per_input, xs)])
    result = tuple(tuple(r) for r in rows)
    if single_out and single_in:
        return result[0][0]
    if single_out:
        return result[0]
    if single_in:
        return tuple(r[0] for r in result)
    return result


def hessian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar function: the Jacobian of its gradient."""
    single_in, inputs = _as_tuple(inputs, "inputs")

    def gradient(*xs):
        out = func(*xs)
        _, outs = _as_tuple(out, "outputs of the user-provided function")
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor with a single "
                               "element.")
        from ..creation import ones_like

        return _grads(outs, xs, (ones_like(outs[0]),), True, strict, "")

    h = jacobian(gradient, inputs, create_graph=create_graph, strict=strict)
    if single_in:
        return h[0][0]
    return h


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product (by the double-backward trick)."""
    from ..creation import ones_like, zeros_like

    single_in, inputs = _as_tuple(inputs, "inputs")
    if v is None:
        if len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided function "
                               "is a single Tensor with a single element.")
        vs = (ones_like(inputs[0]),)
    else:
        vs = _as_tuple(v, "v")[1]
    with grad_mode.enable_grad():
        xs = _grad_inputs(inputs, create_graph)
        out = func(*xs)
        single_out, outs = _as_tuple(out, "outputs of the user-provided function")
        us = tuple(zeros_like(o).requires_grad_(True) for o in outs)
        gs = _grads(outs, xs, us, True, strict, "")
        pairs = [(g, v_) for g, v_ in zip(gs, vs) if g.requires_grad]
        if pairs:
            jv = grad([g for g, _ in pairs], us, [v_ for _, v_ in pairs], create_graph=create_graph,
                      allow_unused=True)
        else:
            jv = (None,) * len(us)
        jv = tuple(zeros_like(o) if j is None else j for j, o in zip(jv, outs))
    outs = outs if create_graph else tuple(o.detach() for o in outs)
    jv = jv if create_graph else tuple(j.detach() for j in jv)
    return (outs[0] if single_out else outs), (jv[0] if single_out else jv)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H) of a scalar function."""
    return _hessian_product(func, inputs, v, create_graph, strict)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v) of a scalar function (equal to v^T H: the Hessian is symmetric)."""
    return _hessian_product(func, inputs, v, create_graph, strict)


def _hessian_product(func, inputs, v, create_graph: bool, strict: bool):
    from ..creation import ones_like

    single_in, inputs = _as_tuple(inputs, "inputs")
    if v is None:
        if len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided function "
                               "is a single Tensor with a single element.")
        vs = (ones_like(inputs[0]),)
    else:
        vs = _as_tuple(v, "v")[1]
    with grad_mode.enable_grad():
        xs = _grad_inputs(inputs, create_graph)
        out = func(*xs)
        _, outs = _as_tuple(out, "outputs of the user-provided function")
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError("The function given to hvp/vhp should return a single Tensor with a single "
                               "element.")
        gs = _grads(outs, xs, (ones_like(outs[0]),), True, strict, "")
        hv = _grads(gs, xs, vs, create_graph, strict, " (double backward)")
    value = outs[0] if create_graph else outs[0].detach()
    hv = hv if create_graph else tuple(h.detach() for h in hv)
    return value, (hv[0] if single_in else hv)

"""torch.autograd.gradcheck / gradgradcheck: autograd's derivatives against finite differences."""

from __future__ import annotations

import warnings

import numpy as np

from ..tensor import Tensor
from . import grad_mode
from .engine import grad


class GradcheckError(RuntimeError):
    """A derivative does not match its finite-difference estimate."""


def _tuple(x) -> tuple:
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _outputs(func, inputs: tuple) -> tuple:
    return tuple(o for o in _tuple(func(*inputs)) if isinstance(o, Tensor))


def _numerical(func, inputs: tuple, i: int, eps: float) -> list[np.ndarray]:
    """d outputs / d inputs[i] by central differences: one (out.size, in.size) matrix per output."""
    from ..creation import tensor

    base = inputs[i].detach().numpy().astype(inputs[i].dtype.np)
    columns: list[list] = []
    for k in range(base.size):
        values = []
        for step in (eps, -eps):
            moved = base.copy().reshape(-1)
            moved[k] += step
            args = list(inputs)
            args[i] = tensor(moved.reshape(base.shape))
            with grad_mode.no_grad():
                outs = _outputs(func, args)
                values.append([o.detach().numpy().astype(np.float64).reshape(-1) for o in outs])
        columns.append([(p - m) / (2 * eps) for p, m in zip(*values)])
    n_out = len(columns[0]) if columns else len(_outputs(func, inputs))
    return [np.stack([c[j] for c in columns], axis=1) if columns else np.zeros((0, 0)) for j in range(n_out)]


def _analytical(func, inputs: tuple, i: int) -> list[np.ndarray]:
    """d outputs / d inputs[i] by backward passes seeded with one-hot vectors."""
    from ..creation import tensor

    args = [t.detach().requires_grad_(True) if isinstance(t, Tensor) and t.requires_grad else t
            for t in inputs]
    with grad_mode.enable_grad():
        outs = _outputs(func, args)
        result = []
        for o in outs:
            rows = []
            for k in range(o.numel()):
                seed = tensor(np.eye(o.numel(), dtype=o.dtype.np)[k].reshape(tuple(o.shape)))
                (g,) = grad([o], [args[i]], [seed], retain_graph=True, allow_unused=True) \
                    if o.requires_grad else (None,)
                rows.append(np.zeros(args[i].numel()) if g is None else g.detach().numpy().reshape(-1))
            result.append(np.stack(rows) if rows else np.zeros((0, args[i].numel())))
    return result


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, masked=None) -> bool:
    """Whether the gradients autograd computes for `func` at `inputs` match central finite
    differences (within atol + rtol * |numerical|), for every input that requires grad."""
    inputs = _tuple(inputs)
    if not any(isinstance(t, Tensor) and t.requires_grad for t in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the "
                         "them have requires_grad=True.")
    for k, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype.name != "float64":
            warnings.warn(f"Input #{k} requires gradient and is not a double precision floating point or "
                          "complex. This check will likely fail if all the inputs are not of double "
                          "precision floating point or complex.", UserWarning, stacklevel=2)
    for i, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        numerical, analytical = _numerical(func, inputs, i, eps), _analytical(func, inputs, i)
        for j, (n, a) in enumerate(zip(numerical, analytical)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(f"Jacobian mismatch for output {j} with respect to input {i},\n"
                                     f"numerical:{n}\nanalytical:{a}\n")
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False, masked=None) -> bool:
    """gradcheck of the gradients themselves: second derivatives against finite differences of
    the first (random grad_outputs unless given, as PyTorch does)."""
    from ..creation import tensor

    inputs = _tuple(inputs)
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(tensor(rng.standard_normal(tuple(o.shape)).astype(o.dtype.np),
                                    requires_grad=True) for o in outs)
    else:
        grad_outputs = _tuple(grad_outputs)
    n = len(inputs)
    diff = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first_derivatives(*args):
        xs, gs = list(args[:n]), args[n:]
        for k in diff:  # finite differences pass plain tensors: differentiate at them all the same
            if not xs[k].requires_grad:
                xs[k] = xs[k].detach().requires_grad_(True)
        with grad_mode.enable_grad():
            ys = _outputs(func, xs)
            pairs = [(y, g) for y, g in zip(ys, gs) if y.requires_grad]
            found = grad([y for y, _ in pairs], [xs[k] for k in diff], [g for _, g in pairs],
                         create_graph=True, allow_unused=True)
        return tuple(f for f in found if f is not None)

    return gradcheck(first_derivatives, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)

"""torch.autograd.Function, torch.autograd.functional and gradcheck on llgrad, against PyTorch
and finite differences."""

from __future__ import annotations

import llgrad
import numpy as np
import pytest
from llgrad.autograd import Function
from oracles import torch_or_skip, value_of


def _functions(lib):
    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    class SplitScale(lib.autograd.Function):
        """Two differentiable outputs and a non-tensor argument."""

        @staticmethod
        def forward(ctx, x, w, k):
            ctx.save_for_backward(x, w)
            ctx.k = k
            return x * w * k, (x + w).sin()

        @staticmethod
        def backward(ctx, ga, gb):
            x, w = ctx.saved_tensors
            c = (x + w).cos()
            return ga * w * ctx.k + gb * c, ga * x * ctx.k + gb * c, None

    class Cube(lib.autograd.Function):
        """A backward written with differentiable ops, so double backward works."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    return Exp, SplitScale, Cube


def _run(lib, body, *arrays):
    ts = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = body(lib, *ts)
    return value_of(out) if hasattr(out, "detach") else out, [value_of(t.grad) for t in ts]


def _bodies():
    def single(lib, x):
        Exp, _, _ = _functions(lib)
        y = Exp.apply(x * 2)
        y.sum().backward()
        return y

    def multi(lib, x, w):
        _, SplitScale, _ = _functions(lib)
        a, b = SplitScale.apply(x, w, 1.5)
        (a * 2 + b * b).sum().backward()
        return a + b

    def one_output_used(lib, x, w):
        _, SplitScale, _ = _functions(lib)
        a, b = SplitScale.apply(x, w, 0.5)
        b.sum().backward()  # ga arrives materialized as zeros
        return b

    def double_backward(lib, x):
        _, _, Cube = _functions(lib)
        y = Cube.apply(x)
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (g * g).sum().backward()
        return g

    return {"single": single, "multi": multi, "one_output_used": one_output_used,
            "double_backward": double_backward}


@pytest.mark.parametrize("name", list(_bodies()))
def test_custom_function_matches_torch(name):
    torch = torch_or_skip()
    body = _bodies()[name]
    rng = np.random.default_rng(3)
    n_args = body.__code__.co_argcount - 1
    arrays = [rng.standard_normal((3, 4)) for _ in range(n_args)]
    ours, (ours_grads) = _run(llgrad, body, *arrays)
    theirs, theirs_grads = _run(torch, body, *arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    for a, b in zip(ours_grads, theirs_grads):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_custom_function_grad_fn_and_needs_input_grad():
    seen = {}

    class Mul(Function):
        @staticmethod
        def forward(ctx, x, w):
            seen["needs"] = ctx.needs_input_grad
            ctx.save_for_backward(x, w)
            return x * w

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g * w if ctx.needs_input_grad[0] else None, g * x if ctx.needs_input_grad[1] else None

    x = llgrad.ones(3, requires_grad=True)
    w = llgrad.full((3,), 2.0)
    y = Mul.apply(x, w)
    assert seen["needs"] == (True, False)
    assert type(y.grad_fn).__name__ == "MulBackward"
    assert y.grad_fn.next_functions[0][0] is not None and y.grad_fn.next_functions[1][0] is None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    with llgrad.no_grad():
        z = Mul.apply(x, w)
    assert z.grad_fn is None and not z.requires_grad


def test_saved_tensor_modified_in_place_and_freed():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    leaf = llgrad.ones(3, requires_grad=True)
    x = leaf * 1
    y = Square.apply(x)
    x.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    y = Square.apply(leaf * 1)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()


def test_non_differentiable_output_and_wrong_gradient_count():
    class ArgmaxAndValue(Function):
        @staticmethod
        def forward(ctx, x):
            i = x.argmax()
            ctx.mark_non_differentiable(i)
            return x.max(), i

        @staticmethod
        def backward(ctx, g, gi):
            return g

    x = llgrad.tensor([1.0, 3.0, 2.0], requires_grad=True)
    v, i = ArgmaxAndValue.apply(x)
    assert v.requires_grad and not i.requires_grad and i.grad_fn is None

    class TooMany(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        TooMany.apply(x).sum().backward()

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return llgrad.ones(4)

    with pytest.raises(RuntimeError, match="invalid gradient at index 0"):
        WrongShape.apply(x).sum().backward()


def test_custom_function_gradient_against_finite_differences():
    class Softplus(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (1 + x.exp()).log()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.sigmoid()

    x = llgrad.tensor(np.linspace(-2, 2, 7), requires_grad=True)
    assert llgrad.autograd.gradcheck(Softplus.apply, (x,))


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            return g * 1.01  # should be g * cos(x)

    x = llgrad.tensor([0.1, 0.2], dtype=llgrad.float64, requires_grad=True)
    assert llgrad.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False
    with pytest.raises(llgrad.autograd.GradcheckError, match="Jacobian mismatch"):
        llgrad.autograd.gradcheck(Wrong.apply, (x,))


def test_gradgradcheck_on_builtin_ops():
    x = llgrad.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    w = llgrad.tensor(np.random.default_rng(1).standard_normal((3, 2)), requires_grad=True)
    assert llgrad.autograd.gradgradcheck(lambda a, b: (a @ b).tanh(), (x, w))


FUNCTIONAL = {
    "jacobian": lambda F, f, x: F.jacobian(f, x),
    "jacobian_create": lambda F, f, x: F.jacobian(f, x, create_graph=True),
    "hessian": lambda F, f, x: F.hessian(lambda t: f(t).sum(), x),
    "vjp": lambda F, f, x: F.vjp(f, x, x.detach() * 0 + 0.5)[1],
    "jvp": lambda F, f, x: F.jvp(f, x, x.detach() * 0 + 0.5)[1],
    "hvp": lambda F, f, x: F.hvp(lambda t: f(t).sum(), x, x.detach() * 0 + 0.5)[1],
    "vhp": lambda F, f, x: F.vhp(lambda t: f(t).sum(), x, x.detach() * 0 + 0.5)[1],
}


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_autograd_functional_matches_torch(name):
    torch = torch_or_skip()
    data = np.random.default_rng(5).standard_normal(4)

    def run(lib):
        x = lib.tensor(data)
        return value_of(FUNCTIONAL[name](lib.autograd.functional, lambda t: (t * t.sin()).tanh() * 2, x))

    np.testing.assert_allclose(run(llgrad), run(torch), rtol=1e-7, atol=1e-9)


def test_jacobian_of_several_inputs_and_outputs_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal(3), rng.standard_normal((3, 2))

    def run(lib):
        def f(x, w):
            return x @ w, (x.exp() * 2).sum()

        jac = lib.autograd.functional.jacobian(f, (lib.tensor(a), lib.tensor(b)))
        return [[value_of(j) for j in row] for row in jac]

    for row_ours, row_theirs in zip(run(llgrad), run(torch)):
        for ours, theirs in zip(row_ours, row_theirs):
            np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    class CubeDetached(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() ** 2  # first derivative right, second lost

    x = llgrad.tensor([0.3, -0.7], dtype=llgrad.float64, requires_grad=True)
    assert llgrad.autograd.gradcheck(CubeDetached.apply, (x,))
    assert llgrad.autograd.gradgradcheck(CubeDetached.apply, (x,), raise_exception=False) is False

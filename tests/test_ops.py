"""Every op of the core: forward against NumPy (float32 and float64), gradients
against finite differences in float64, over broadcasting shapes including 0-d."""

import llgrad
import numpy as np
import pytest
from oracles import check_gradients

RNG = np.random.default_rng(0)

# (shape a, shape b) pairs that broadcast, 0-d included.
BROADCAST = [((), ()), ((3,), ()), ((), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)),
             ((2, 3), (2, 3))]


def rand(shape, lo=-2.0, hi=2.0, dtype=np.float64):
    return RNG.uniform(lo, hi, size=shape).astype(dtype)


BINARY = {
    "add": (lambda a, b: a + b, np.add, None),
    "sub": (lambda a, b: a - b, np.subtract, None),
    "mul": (lambda a, b: a * b, np.multiply, None),
    "div": (lambda a, b: a / b, np.divide, "nonzero_b"),
    "pow": (lambda a, b: a ** b, np.power, "positive_a"),
    "maximum": (llgrad.maximum, np.maximum, None),
    "minimum": (llgrad.minimum, np.minimum, None),
}


def _operands(shape_a, shape_b, domain, dtype=np.float64):
    a, b = rand(shape_a, dtype=dtype), rand(shape_b, dtype=dtype)
    if domain == "nonzero_b":
        b = np.where(np.abs(b) < 0.3, 0.7, b).astype(dtype)
    if domain == "positive_a":
        a = np.abs(a).astype(dtype) + 0.3
    return a, b


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
def test_binary_forward(name, shapes):
    fn, ref, domain = BINARY[name]
    for dtype, rtol in ((np.float32, 2e-6), (np.float64, 1e-13)):
        a, b = _operands(*shapes, domain, dtype)
        out = fn(llgrad.tensor(a), llgrad.tensor(b))
        assert tuple(out.shape) == np.broadcast_shapes(a.shape, b.shape)
        assert out.dtype.np == np.dtype(dtype)
        np.testing.assert_allclose(out.numpy(), ref(a, b), rtol=rtol)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
def test_binary_gradient(name, shapes):
    fn, _, domain = BINARY[name]
    a, b = _operands(*shapes, domain)
    if name in ("maximum", "minimum"):
        b = b + 0.05  # keep away from ties, where the derivative jumps
    check_gradients(fn, a, b)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
@pytest.mark.parametrize("scalar", [2, 0.5, -1.5])
def test_scalar_operands_both_sides(name, scalar):
    fn, ref, _ = BINARY[name]
    a = np.abs(rand((2, 3))) + 0.5
    x = llgrad.tensor(a)
    np.testing.assert_allclose(fn(x, scalar).numpy(), ref(a, scalar), rtol=1e-13)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(fn(scalar, x).numpy(), ref(scalar, a), rtol=1e-13)
    check_gradients(lambda t: fn(t, scalar), a)
    check_gradients(lambda t: fn(scalar, t), a)


UNARY = {
    "neg": (lambda x: -x, np.negative, (-3, 3)),
    "exp": (llgrad.exp, np.exp, (-5, 5)),
    "log": (llgrad.log, np.log, (0.1, 5)),
    "sqrt": (llgrad.sqrt, np.sqrt, (0.1, 5)),
    "sin": (llgrad.sin, np.sin, (-4, 4)),
    "cos": (llgrad.cos, np.cos, (-4, 4)),
    "tanh": (llgrad.tanh, np.tanh, (-4, 4)),
    "sigmoid": (llgrad.sigmoid, lambda a: 1 / (1 + np.exp(-a)), (-6, 6)),
    "relu": (llgrad.relu, lambda a: np.maximum(a, 0), (-3, 3)),
    "abs": (llgrad.abs, np.abs, (-3, 3)),
    "reciprocal": (llgrad.reciprocal, np.reciprocal, (0.5, 3)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(), (5,), (3, 4)], ids=str)
def test_unary_forward_and_gradient(name, shape):
    fn, ref, (lo, hi) = UNARY[name]
    for dtype, rtol in ((np.float32, 3e-6), (np.float64, 1e-13)):
        a = rand(shape, lo, hi, dtype)
        np.testing.assert_allclose(fn(llgrad.tensor(a)).numpy(), ref(a), rtol=rtol, atol=1e-7)
    a = rand(shape, lo, hi)
    if name in ("relu", "abs"):
        a = np.where(np.abs(a) < 0.1, 0.5, a)  # the kink at 0
    check_gradients(fn, a)


def test_float32_math_accuracy_over_range():
    # The vectorized float32 exp/log/tanh/sigmoid (polynomials in LLVM IR) against float64 NumPy.
    x = np.concatenate([np.linspace(-100, 100, 20001), np.geomspace(1e-30, 80, 2000),
                        -np.geomspace(1e-30, 80, 2000)]).astype(np.float32)
    xd = x.astype(np.float64)
    t = llgrad.tensor(x)
    with np.errstate(all="ignore"):
        cases = [(llgrad.exp, np.exp(xd), xd < 88), (llgrad.tanh, np.tanh(xd), xd == xd),
                 (llgrad.sigmoid, 1 / (1 + np.exp(-xd)), xd > -80)]
        for fn, ref, mask in cases:
            got = fn(t).numpy().astype(np.float64)
            rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-37)
            assert rel[mask].max() < 4e-7, fn.__name__
        pos = x[x > 0]
        got = llgrad.log(llgrad.tensor(pos)).numpy().astype(np.float64)
        ref = np.log(pos.astype(np.float64))
        assert np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)) < 4e-7


def test_math_special_values():
    x = llgrad.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), -1.0, 1e-45, 100.0, -200.0])
    with np.errstate(all="ignore"):
        ref = x.numpy().astype(np.float32)
        for fn, npf in ((llgrad.exp, np.exp), (llgrad.log, np.log), (llgrad.tanh, np.tanh),
                        (llgrad.sqrt, np.sqrt)):
            np.testing.assert_allclose(fn(x).numpy(), npf(ref), rtol=3e-7, atol=0, err_msg=fn.__name__)
        np.testing.assert_allclose(llgrad.sigmoid(x).numpy(), (1 / (1 + np.exp(-ref))).astype(np.float32),
                                   rtol=3e-7, atol=0)


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
@pytest.mark.parametrize("shapes", BROADCAST[:5], ids=str)
def test_comparisons(op, shapes):
    a = RNG.integers(0, 3, size=shapes[0]).astype(np.float32)
    b = RNG.integers(0, 3, size=shapes[1]).astype(np.float32)
    out = getattr(llgrad, op)(llgrad.tensor(a), llgrad.tensor(b))
    assert out.dtype is llgrad.bool and out.grad_fn is None
    np.testing.assert_array_equal(out.numpy(), getattr(np, {"eq": "equal", "ne": "not_equal", "lt": "less",
                                                              "le": "less_equal", "gt": "greater",
                                                              "ge": "greater_equal"}[op])(a, b))
    # Mixed dtypes compare in the promoted type.
    c = llgrad.tensor([1, 2, 3]) < llgrad.tensor([1.5, 1.5, 3.5])
    assert c.tolist() == [True, False, True]


def test_nan_comparisons_follow_ieee():
    x = llgrad.tensor([float("nan"), 1.0])
    assert (x == x).tolist() == [False, True]
    assert (x != x).tolist() == [True, False]
    assert (x < 2).tolist() == [False, True]


def test_where_forward_and_gradient():
    c = np.array([[True, False, True]])
    a, b = rand((2, 3)), rand((3,))
    out = llgrad.where(llgrad.tensor(c), llgrad.tensor(a), llgrad.tensor(b))
    np.testing.assert_allclose(out.numpy(), np.where(c, a, b))
    check_gradients(lambda x, y: llgrad.where(llgrad.tensor(c), x, y), a, b)
    with pytest.raises(RuntimeError, match="where expected condition to be a boolean tensor"):
        llgrad.where(llgrad.tensor(a), llgrad.tensor(a), llgrad.tensor(b))


REDUCTIONS = [(None, False), (0, False), (1, True), (-1, False), ((0, 1), False), ((0, 2), True)]


@pytest.mark.parametrize("name,dim,keepdim", [
    (name, dim, keepdim) for name in ("sum", "mean", "max", "min") for dim, keepdim in REDUCTIONS
    if not (name in ("max", "min") and isinstance(dim, tuple))  # max/min take one dim
], ids=str)
def test_reductions(name, dim, keepdim):
    a = rand((3, 4, 5))
    x = llgrad.tensor(a)
    ref = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}[name]
    axis = dim
    if dim is None:
        out = getattr(x, name)()
        want = ref(a)
    elif name in ("max", "min"):
        out, idx = getattr(x, name)(dim, keepdim=keepdim)
        want = ref(a, axis=axis, keepdims=keepdim)
        arg = (np.argmax if name == "max" else np.argmin)(a, axis=axis)
        if keepdim:
            arg = np.expand_dims(arg, axis)
        np.testing.assert_array_equal(idx.numpy(), arg)
        assert idx.dtype is llgrad.int64
    else:
        out = getattr(x, name)(dim, keepdim=keepdim)
        want = ref(a, axis=axis, keepdims=keepdim)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    if dim is None:
        fn = lambda t: getattr(t, name)()  # noqa: E731
    elif name in ("max", "min"):
        fn = lambda t: getattr(t, name)(dim, keepdim=keepdim)[0]  # noqa: E731
    else:
        fn = lambda t: getattr(t, name)(dim, keepdim=keepdim)  # noqa: E731
    check_gradients(fn, a)


def test_reduction_of_0d_and_float32_sum():
    x = llgrad.tensor(3.5)
    assert x.sum().item() == 3.5 and x.mean().item() == 3.5 and x.max().item() == 3.5
    a = rand((1000,), dtype=np.float32)
    np.testing.assert_allclose(llgrad.tensor(a).sum().item(), a.astype(np.float64).sum(), rtol=1e-5)
    assert llgrad.tensor([1, 2, 3]).sum().dtype is llgrad.int64
    assert llgrad.tensor([True, True, False]).sum().item() == 2


def test_max_ties_split_whole_but_not_per_dim():
    x = llgrad.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])
    y = llgrad.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    y.max(dim=1)[0].sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize("p", [2, 1, 3, float("inf")])
@pytest.mark.parametrize("dim", [None, 1])
def test_norm(p, dim):
    a = rand((3, 4))
    out = llgrad.tensor(a).norm(p=p, dim=dim)
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(a, ord=p, axis=dim) if dim is not None
                               else np.linalg.norm(a.reshape(-1), ord=p), rtol=1e-12)
    check_gradients(lambda t: t.norm(p=p, dim=dim), a)


@pytest.mark.parametrize("shapes", [((4,), (4,)), ((3, 4), (4, 5)), ((3, 4), (4,)), ((4,), (4, 5)),
                                    ((1, 1), (1, 1)), ((5, 0), (0, 2))], ids=str)
def test_matmul(shapes):
    a, b = rand(shapes[0]), rand(shapes[1])
    out = llgrad.tensor(a) @ llgrad.tensor(b)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-12, atol=1e-14)
    a32, b32 = llgrad.tensor(a, dtype=llgrad.float32), llgrad.tensor(b, dtype=llgrad.float32)
    np.testing.assert_allclose((a32 @ b32).numpy(), a @ b, rtol=1e-5, atol=1e-6)
    if 0 not in shapes[0]:
        check_gradients(lambda x, y: x @ y, a, b)


def test_dot_and_matmul_names_and_errors():
    x = llgrad.ones(3, requires_grad=True)
    assert llgrad.dot(x, x).grad_fn.name() == "DotBackward0"
    assert (llgrad.ones(2, 3, requires_grad=True) @ llgrad.ones(3)).grad_fn.name() == "MvBackward0"
    assert (llgrad.ones(2, 3, requires_grad=True) @ llgrad.ones(3, 2)).grad_fn.name() == "MmBackward0"
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)"):
        llgrad.ones(2, 3) @ llgrad.ones(2, 3)
    with pytest.raises(RuntimeError, match="dot : expected both vectors to have same dtype"):
        llgrad.ones(3) @ llgrad.arange(3)


def test_broadcast_error_names_sizes():
    with pytest.raises(RuntimeError, match=r"size of tensor a \(2\) must match the size of tensor b \(3\) "
                                           r"at non-singleton dimension 1"):
        llgrad.ones(4, 2) + llgrad.ones(3)


def test_promotion_rules():
    f32, f64, i32, i64, b = llgrad.float32, llgrad.float64, llgrad.int32, llgrad.int64, llgrad.bool
    cases = [
        (llgrad.ones(2, dtype=i32) + 2.5, f32), (llgrad.ones(2, dtype=i32) + 5, i32),
        (llgrad.ones(2, dtype=b) + 5, i64), (llgrad.ones(2) + llgrad.tensor(1.0, dtype=f64), f32),
        (llgrad.ones(2, dtype=i32) + llgrad.tensor(1.0, dtype=f64), f64),
        (llgrad.ones(2, dtype=i32) + llgrad.tensor(1, dtype=i64), i32),
        (llgrad.tensor(1, dtype=i32) + llgrad.tensor(1, dtype=i64), i64),
        (llgrad.ones(2, dtype=i64) / 2, f32), (llgrad.ones(2) * llgrad.ones(2, dtype=f64), f64),
        (llgrad.ones(2, dtype=i64).exp(), f32), (llgrad.ones(2, dtype=b) * True, b),
    ]
    for t, want in cases:
        assert t.dtype is want
    assert (llgrad.tensor([3, 4]) / 2).tolist() == [1.5, 2.0]
    assert (llgrad.tensor([3, 4]) * 2).tolist() == [6, 8]


def test_promotion_matches_torch():
    torch = pytest.importorskip("torch")
    names = ["float32", "float64", "int32", "int64", "bool"]
    for a in names:
        for b in names:
            for ashape, bshape in (((2,), (2,)), ((2,), ()), ((), (2,))):
                ta = torch.ones(ashape, dtype=getattr(torch, a))
                tb = torch.ones(bshape, dtype=getattr(torch, b))
                la = llgrad.ones(ashape, dtype=getattr(llgrad, a))
                lb = llgrad.ones(bshape, dtype=getattr(llgrad, b))
                assert str(torch.result_type(ta, tb)) == repr((la * lb).dtype)
            for scalar in (2, 2.5, True):
                t = torch.ones(2, dtype=getattr(torch, a)) * scalar
                assert str(t.dtype) == repr((llgrad.ones(2, dtype=getattr(llgrad, a)) * scalar).dtype)


def test_values_and_grads_match_torch():
    torch = pytest.importorskip("torch")
    a = rand((3, 4), dtype=np.float32)
    b = rand((4,), dtype=np.float32)

    def program(lib, x, y):
        h = (x * y + 1).tanh() * (x - y).sigmoid() + (x / (y.abs() + 1)).exp().log()
        return (h.relu() ** 2).sum(1).mean() + x.max() + (x @ y).norm()

    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    lx, ly = llgrad.tensor(a, requires_grad=True), llgrad.tensor(b, requires_grad=True)
    to = program(torch, tx, ty)
    lo = program(llgrad, lx, ly)
    to.backward()
    lo.backward()
    np.testing.assert_allclose(lo.item(), to.item(), rtol=1e-5)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ly.grad.numpy(), ty.grad.numpy(), rtol=1e-4, atol=1e-6)

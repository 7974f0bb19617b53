"""Edge cases where llgrad once differed from PyTorch: empty reductions, saturated losses,
out-of-range indices and integers, signature errors. NumPy (and PyTorch, when installed)
are the references."""

import inspect

import llgrad
import numpy as np
import pytest

# -- all() / any() over nothing --------------------------------------------------------------

EMPTY_CASES = [((0,), None, False), ((3, 0), 1, False), ((0, 3), 0, False), ((0, 3), 0, True),
               ((2, 0, 4), (1, 2), False), ((0, 3), None, True), ((2, 0), -1, True)]


@pytest.mark.parametrize("shape, dim, keepdim", EMPTY_CASES)
@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any_over_nothing(name, shape, dim, keepdim):
    got = getattr(llgrad.ones(*shape), name)() if dim is None and not keepdim else \
        getattr(llgrad.ones(*shape), name)(dim=dim, keepdim=keepdim)
    axis = None if dim is None else dim
    want = getattr(np, name)(np.ones(shape, bool), axis=axis, keepdims=keepdim)
    assert got.dtype is llgrad.bool
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_all_any_still_reduce_nonempty_tensors():
    x = llgrad.tensor([[1.0, 0.0], [2.0, 3.0]])
    np.testing.assert_array_equal(x.all(1).numpy(), [False, True])
    np.testing.assert_array_equal(x.any(0).numpy(), [True, True])
    with pytest.raises(IndexError, match="Dimension out of range"):
        llgrad.ones(0, 3).all(dim=5)


# -- indices out of range -------------------------------------------------------------------


@pytest.mark.parametrize("index", [[-1], [0, -3], [3], [[1, 5]]])
def test_embedding_refuses_indices_outside_its_rows(index):
    # A negative index once returned a row counted from the end; PyTorch raises.
    table = llgrad.nn.Embedding(3, 2)
    with pytest.raises(IndexError, match="index out of range in self"):
        table(llgrad.tensor(index))
    with pytest.raises(IndexError, match="index out of range in self"):
        llgrad.nn.functional.embedding(llgrad.tensor(index), llgrad.zeros(3, 2))


def test_embedding_of_valid_and_empty_indices():
    weight = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    table = llgrad.nn.Embedding.from_pretrained(llgrad.tensor(weight))
    np.testing.assert_array_equal(table(llgrad.tensor([2, 0, 2])).numpy(), weight[[2, 0, 2]])
    assert tuple(table(llgrad.tensor([], dtype=llgrad.int64)).shape) == (0, 2)


@pytest.mark.parametrize("values, classes, message", [
    ([-1, 1], 3, "Class values must be non-negative."),
    ([3, 1], 3, "Class values must be smaller than num_classes."),
])
def test_one_hot_refuses_classes_out_of_range(values, classes, message):
    with pytest.raises(RuntimeError, match=message):
        llgrad.nn.functional.one_hot(llgrad.tensor(values), classes)


# -- binary cross-entropy at probabilities 0 and 1 ------------------------------------------


def _bce_reference(p, t, w, reduction):
    """PyTorch's binary_cross_entropy and its gradients (ATen's formulas, in float64): the
    logs clamped at -100, the input gradient (p - t) / max((1 - p) p, 1e-12)."""
    p, t = p.astype(np.float64), t.astype(np.float64)
    w = np.ones_like(p) if w is None else np.broadcast_to(w, p.shape).astype(np.float64)
    with np.errstate(divide="ignore"):
        log_p, log_1mp = np.log(p), np.log1p(-p)
    loss = -w * (t * np.maximum(log_p, -100) + (1 - t) * np.maximum(log_1mp, -100))
    scale = 1 / p.size if reduction == "mean" else 1.0
    grad_p = scale * w * (p - t) / np.maximum((1 - p) * p, 1e-12)
    with np.errstate(invalid="ignore"):
        grad_t = scale * w * (log_1mp - log_p)
    value = {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]
    return value, grad_p, grad_t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_is_finite_at_zero_and_one(reduction, weighted):
    # A probability of exactly 0 or 1 (sigmoid(20.) in float32) once gave NaN gradients: one
    # confident sample turned the weights into NaN after step(). PyTorch clamps the logs.
    p_np = np.array([1.0, 0.0, 0.3, 1.0, 0.0, 0.5], np.float32)
    t_np = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 0.25], np.float32)
    w_np = np.array([2.0, 1.0, 0.5, 3.0, 1.0, 1.5], np.float32) if weighted else None
    p = llgrad.tensor(p_np, requires_grad=True)
    t = llgrad.tensor(t_np, requires_grad=True)
    weight = None if w_np is None else llgrad.tensor(w_np)
    loss = llgrad.nn.functional.binary_cross_entropy(p, t, weight=weight, reduction=reduction)
    assert type(loss.grad_fn).__name__ == "BinaryCrossEntropyBackward0"
    (loss.sum() if reduction == "none" else loss).backward()
    value, grad_p, grad_t = _bce_reference(p_np, t_np, w_np, reduction)
    np.testing.assert_allclose(loss.detach().numpy(), value, rtol=1e-6)
    assert np.isfinite(p.grad.numpy()).all()
    np.testing.assert_allclose(p.grad.numpy(), grad_p, rtol=1e-6)
    np.testing.assert_allclose(t.grad.numpy(), grad_t, rtol=1e-6)


def test_binary_cross_entropy_of_a_saturated_sigmoid_trains():
    x = llgrad.tensor([20.0, -20.0, 0.0], requires_grad=True)
    p = x.sigmoid()
    assert p.detach().numpy()[0] == 1.0  # saturated in float32
    llgrad.nn.functional.binary_cross_entropy(p, llgrad.tensor([0.0, 1.0, 1.0])).backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_binary_cross_entropy_matches_pytorch():
    torch = pytest.importorskip("torch")
    p_np = np.array([[1.0, 0.0, 0.3], [0.9, 1e-30, 0.5]], np.float32)
    t_np = np.array([[0.0, 1.0, 1.0], [0.2, 0.0, 0.5]], np.float32)
    w_np = np.array([2.0, 1.0, 0.5], np.float32)
    results = []
    for lib in (torch, llgrad):
        p, t = lib.tensor(p_np, requires_grad=True), lib.tensor(t_np, requires_grad=True)
        loss = lib.nn.functional.binary_cross_entropy(p, t, weight=lib.tensor(w_np))
        loss.backward()
        results.append((loss.item(), p.grad.numpy(), t.grad.numpy()))
    (want, want_p, want_t), (got, got_p, got_t) = results
    assert got == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(got_p, want_p, rtol=1e-5)
    np.testing.assert_allclose(got_t, want_t, rtol=1e-5)


def test_binary_cross_entropy_errors_as_pytorch():
    p = llgrad.tensor([0.5])
    with pytest.raises(RuntimeError, match="Found dtype Double but expected Float"):
        llgrad.nn.functional.binary_cross_entropy(p, llgrad.tensor([0.5], dtype=llgrad.float64))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        llgrad.nn.functional.binary_cross_entropy(p, p, weight=llgrad.tensor([1.0], requires_grad=True))


# -- argument errors name the op --------------------------------------------------------------


def _public_callables():
    x = llgrad.ones(2, 2)
    for name in sorted(dir(llgrad.Tensor)):
        if name.startswith("_") and not (name.startswith("__") and name[2:-2] in _OPERATORS):
            continue
        attr = inspect.getattr_static(llgrad.Tensor, name)
        if isinstance(attr, property) or not callable(getattr(x, name, None)):
            continue
        yield f"Tensor.{name}", name, lambda name=name: getattr(x.clone(), name)(__bogus__=1)
    for module, prefix in ((llgrad, "llgrad"), (llgrad.nn.functional, "F")):
        for name in sorted(module.__all__):
            fn = getattr(module, name)
            if inspect.isfunction(fn):
                yield f"{prefix}.{name}", name, lambda fn=fn: fn(x, __bogus__=1)


_OPERATORS = {"add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "pow", "rpow", "matmul",
              "rmatmul", "neg", "abs", "invert", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "iadd",
              "isub", "imul", "itruediv", "ipow"}


def test_argument_errors_name_the_op_the_user_called():
    # round(x, decimals=2) once raised "_unary.<locals>.fn() got an unexpected keyword argument".
    wrong = []
    for where, name, call in _public_callables():
        try:
            call()
        except TypeError as e:
            message = str(e)
            if not (message.startswith(f"{name}()") or message.startswith(f"Tensor.{name}()")):
                wrong.append(f"{where}: {message}")
        except Exception as e:  # an argument error of another kind, or a later failure
            wrong.append(f"{where}: {type(e).__name__}: {e}")
        else:
            wrong.append(f"{where}: accepted an unknown keyword argument")
    known = {"Tensor.nelement: Tensor.numel() got an unexpected keyword argument '__bogus__'"}
    assert sorted(set(wrong) - known) == []


def test_round_to_decimals():
    values = np.array([1.2345, -2.555, 1234.5, 0.125, 2.5e-3, -0.5], np.float32)
    x = llgrad.tensor(values, requires_grad=True)
    for decimals in (2, 1, -2, 0):
        got = llgrad.round(x, decimals=decimals)
        scale = np.float32(10.0 ** abs(decimals))
        want = np.round(values * scale) / scale if decimals >= 0 else np.round(values / scale) * scale
        np.testing.assert_array_equal(got.detach().numpy(), want)
        assert type(got.grad_fn).__name__ == ("RoundBackward0" if decimals == 0 else "RoundBackward1")
    llgrad.round(x, decimals=2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(values))
    y = llgrad.tensor(values)
    y.round_(decimals=1)
    np.testing.assert_array_equal(y.numpy(), np.round(values * np.float32(10)) / np.float32(10))
    with pytest.raises(TypeError, match="round"):
        llgrad.round(x, decimals=1.5)


# -- a NaN attribute is one cache key ----------------------------------------------------------


def test_nan_exponent_compiles_once(monkeypatch):
    # NaN != NaN: x ** float('nan') made a new cache key, so a new compile, at every call.
    monkeypatch.setenv("LLGRAD_CACHE", "0")
    from llgrad.runtime import executor

    x = llgrad.arange(4.0, requires_grad=True)
    for step in range(4):
        x.grad = None
        y = x ** float("nan")  # a new NaN object every call
        y.sum().backward()
        assert np.isnan(y.detach().numpy()[[0, 2, 3]]).all() and y.detach().numpy()[1] == 1.0
        if step == 1:
            compiles = executor.stats()["compiles"]
    assert executor.stats()["compiles"] == compiles


# -- Python numbers out of a dtype's range --------------------------------------------------

_OVERFLOW = "value cannot be converted to type {} without overflow"
_I32 = [1, -5, 7]
_INT = (RuntimeError, _OVERFLOW.format("int"))
_UNPACK = (ValueError, "Overflow when unpacking long long")


def _i32(lib):
    return lib.tensor(_I32, dtype=lib.int32)


# (what, call(lib), expected: an exception (type, message) or the values PyTorch gives)
INTEGER_CASES = [
    ("int32 clamp(max=2**31)", lambda lib: _i32(lib).clamp(max=2**31), _INT),
    ("int32 clamp(min=-2**31-1)", lambda lib: _i32(lib).clamp(min=-(2**31) - 1),
     _INT),
    ("int64 clamp_max(2**63)", lambda lib: lib.tensor([1, 2]).clamp_max(2**63),
     (RuntimeError, _OVERFLOW.format("int64_t"))),
    ("int32 clamp(max=2.5) is float", lambda lib: _i32(lib).clamp(max=2.5), [1.0, -5.0, 2.5]),
    ("int32 masked_fill 2**40", lambda lib: _i32(lib).masked_fill(_i32(lib) > 0, 2**40),
     _INT),
    ("int32 masked_fill inf", lambda lib: _i32(lib).masked_fill(_i32(lib) > 0, float("inf")),
     _INT),
    ("int32 masked_fill 0-d 2**40", lambda lib: _i32(lib).masked_fill(_i32(lib) > 0, lib.tensor(2**40)),
     _INT),
    ("int32 masked_fill 3.7 truncates", lambda lib: _i32(lib).masked_fill(_i32(lib) > 0, 3.7), [3, -5, 3]),
    ("int32 fill_ 2**40", lambda lib: _i32(lib).fill_(2**40), _INT),
    ("int32 fill_ nan", lambda lib: _i32(lib).fill_(float("nan")), _INT),
    ("int32 fill_ -2**31 fits", lambda lib: _i32(lib).fill_(-(2**31)), [-(2**31)] * 3),
    ("int32 fill_ 0-d 2**40 wraps", lambda lib: _i32(lib).fill_(lib.tensor(2**40)), [0, 0, 0]),
    ("float32 fill_ 1e300", lambda lib: lib.ones(2).fill_(1e300), (RuntimeError, _OVERFLOW.format("float"))),
    ("float32 fill_ 2**64", lambda lib: lib.ones(2).fill_(2**64), (OverflowError, "int too big to convert")),
    ("float32 fill_ inf fits", lambda lib: lib.ones(2).fill_(float("inf")), [float("inf")] * 2),
    ("bool fill_ 2**40", lambda lib: lib.tensor([True, False]).fill_(2**40), [True, True]),
    ("int32 where 2**40", lambda lib: lib.where(_i32(lib) > 0, _i32(lib), 2**40),
     _INT),
    ("int32 where 2**31 first", lambda lib: lib.where(_i32(lib) > 0, 2**31, _i32(lib)),
     _INT),
    ("int32 ** 2**40", lambda lib: _i32(lib) ** 2**40, _INT),
    ("int32 tensor 2**40", lambda lib: lib.tensor([2**40], dtype=lib.int32),
     (RuntimeError, _OVERFLOW.format("int32"))),
    ("int32 tensor 0-d 2**31", lambda lib: lib.tensor(2**31, dtype=lib.int32),
     (RuntimeError, _OVERFLOW.format("int32"))),
    ("int32 tensor [True, 2**40]", lambda lib: lib.tensor([True, 2**40], dtype=lib.int32),
     (RuntimeError, _OVERFLOW.format("int32"))),
    ("int32 tensor 2.7 truncates", lambda lib: lib.tensor([2.7, -2.7], dtype=lib.int32), [2, -2]),
    ("tensor 2**63", lambda lib: lib.tensor([2**63]), _UNPACK),
    ("tensor [[1, 2**63]]", lambda lib: lib.tensor([[1, 2**63]]), _UNPACK),
    ("tensor -2**63-1", lambda lib: lib.tensor(-(2**63) - 1), _UNPACK),
    ("tensor -2**63 fits", lambda lib: lib.tensor([-(2**63)]), [-(2**63)]),
    ("int64 tensor inf", lambda lib: lib.tensor([float("inf")], dtype=lib.int64),
     (RuntimeError, _OVERFLOW.format("int64"))),
    ("int64 tensor nan", lambda lib: lib.tensor([float("nan")], dtype=lib.int64),
     (RuntimeError, _OVERFLOW.format("int64"))),
    ("float32 tensor 2**64", lambda lib: lib.tensor([2**64], dtype=lib.float32), [2.0**64]),
    ("float32 tensor 1e300 is inf", lambda lib: lib.tensor([1e300], dtype=lib.float32), [float("inf")]),
    ("int32 full 2**40", lambda lib: lib.full((2,), 2**40, dtype=lib.int32), _INT),
    ("full 2**63", lambda lib: lib.full((2,), 2**63), (RuntimeError, _OVERFLOW.format("int64_t"))),
    ("full 2**64", lambda lib: lib.full((2,), 2**64), (OverflowError, "int too big to convert")),
    ("int64 full inf", lambda lib: lib.full((2,), float("inf"), dtype=lib.int64),
     (RuntimeError, _OVERFLOW.format("int64_t"))),
    ("int32 + 2**31 wraps", lambda lib: _i32(lib) + 2**31, [-2147483647, 2147483643, -2147483641]),
    ("int32 + 2**40 wraps", lambda lib: _i32(lib) + 2**40, _I32),
    ("int32 max + 1 wraps", lambda lib: lib.tensor([2**31 - 1], dtype=lib.int32) + 1, [-(2**31)]),
]


def _outcome(call, lib):
    try:
        return call(lib).tolist()
    except Exception as e:  # the exception is the outcome compared
        return (type(e), str(e))


@pytest.mark.parametrize("what, call, expected", INTEGER_CASES, ids=[c[0] for c in INTEGER_CASES])
def test_out_of_range_numbers_raise_or_wrap_as_in_pytorch(what, call, expected):
    # int32 clamp(max=2**31) made every element -2**31; masked_fill, fill_, where and tensor()
    # with 2**40 gave 0; tensor([2**63]) and tensor([inf], dtype=int64) gave -2**63.
    got = _outcome(call, llgrad)
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and got[0] is expected[0], got
        assert got[1].startswith(expected[1]), got
    else:
        assert got == expected


@pytest.mark.parametrize("what, call, expected", INTEGER_CASES, ids=[c[0] for c in INTEGER_CASES])
def test_out_of_range_expectations_are_pytorchs(what, call, expected):
    torch = pytest.importorskip("torch")
    got = _outcome(call, torch)
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and got[0] is expected[0] and got[1].startswith(expected[1]), got
    else:
        assert got == expected


@pytest.mark.parametrize("exponent", [65, 100, 2**30, 2**31 - 1])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_power_with_a_large_exponent(dtype, exponent):
    # An integer exponent above 64 once raised KeyError: 'int32' while compiling.
    base = np.array([1, 2, -1, 3, 0], dtype=dtype)
    got = (llgrad.tensor(base) ** exponent).numpy()
    want = [int(pow(int(v), exponent, 2**64)) for v in base]  # wrapped to the dtype's width
    bits = np.dtype(dtype).itemsize * 8
    want = [((w + 2 ** (bits - 1)) % 2**bits) - 2 ** (bits - 1) for w in want]
    np.testing.assert_array_equal(got, np.array(want, dtype=dtype))

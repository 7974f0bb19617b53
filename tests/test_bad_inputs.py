"""Every bad input gets a clear error where the user wrote it (issue 6).

A table of bad programs: each must raise PyTorch's exception type, with the shapes or
dtypes involved in the message, at the op (the traceback's last frame in user code is
the line marked `# <-`), never a crash or a wrong answer. Then a table of awkward but
valid inputs (NaN/Inf, odd NumPy layouts) that must simply work. After walking both,
an ordinary training step still computes the right numbers.

Each program takes the library (`llgrad`, or `torch` for the comparison) as `t`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass

import llgrad
import numpy as np
import pytest

try:
    import torch
except ImportError:
    torch = None


ACCEPTS = None  # PyTorch accepts the program (it supports more dtypes than llgrad)


@dataclass(frozen=True)
class Bad:
    name: str
    program: Callable
    error: type  # PyTorch's exception type, which llgrad raises
    says: tuple  # what llgrad's message must name: the shapes and dtypes involved
    torch_error: type | None = Exception  # what PyTorch raises, where it differs: then `why`
    why: str = ""

    @property
    def pytorch_raises(self) -> type | None:
        return self.error if self.torch_error is Exception else self.torch_error


# -- the bad programs (the line marked `# <-` is where the error must surface) ------------------

def broadcast(t):
    a, b = t.ones(2, 3), t.ones(4)
    return a + b  # <-


def broadcast_where(t):
    return t.where(t.ones(2, 3) > 0, t.ones(2, 3), t.ones(4))  # <-


def matmul_inner(t):
    a, b = t.ones(2, 3), t.ones(4, 5)
    return a @ b  # <-


def mm_inner(t):
    return t.mm(t.ones(2, 3), t.ones(4, 5))  # <-


def bmm_inner(t):
    return t.bmm(t.ones(2, 2, 3), t.ones(2, 4, 5))  # <-


def batched_matmul_inner(t):
    a, b = t.ones(2, 2, 3), t.ones(4, 5)
    return a @ b  # <-


def mv_inner(t):
    return t.mv(t.ones(2, 3), t.ones(4))  # <-


def dot_inner(t):
    return t.dot(t.ones(3), t.ones(4))  # <-


def matmul_dtypes(t):
    return t.mm(t.ones(2, 3), t.ones(3, 2, dtype=t.float64))  # <-


def reshape_count(t):
    x = t.ones(2, 3)
    return x.reshape(4)  # <-


def view_count(t):
    x = t.ones(2, 3)
    return x.view(4, -1)  # <-


def index_int(t):
    x = t.ones(2, 3)
    return x[5]  # <-


def index_negative(t):
    x = t.ones(2, 3)
    return x[:, -4]  # <-


def index_tensor(t):
    x, i = t.ones(2, 3), t.tensor([0, 5])
    return x[i]  # <-


def index_tensor_negative(t):
    x, i = t.ones(2, 3), t.tensor([[-4]])
    return x[:, i]  # <-


def index_tensor_computed(t):
    x = t.ones(2, 3)
    i = (t.ones(3) * 7).long()
    return x[:, i]  # <-


def index_assign(t):
    x = t.ones(2, 3)
    x[t.tensor([2])] = 5.0  # <-


def int_requires_grad(t):
    return t.tensor([1, 2], requires_grad=True)  # <-


def long_requires_grad_(t):
    x = t.ones(2, dtype=t.int64)
    return x.requires_grad_()  # <-


def bool_requires_grad_(t):
    x = t.tensor([True, False])
    x.requires_grad = True  # <-


def backward_non_scalar(t):
    x = t.ones(2, requires_grad=True)
    (x * 2).backward()  # <-


def gradient_wrong_shape(t):
    x = t.ones(2, requires_grad=True)
    (x * 2).backward(t.ones(3))  # <-


def gradient_for_0d_wrong_shape(t):
    x = t.ones(2, requires_grad=True)
    (x * 2).sum().backward(t.ones(1))  # <-


def second_backward(t):
    x = t.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()  # <-


def inplace_on_saved(t):
    x = t.ones(2, requires_grad=True)
    y = x * 2
    z = y * y
    y.add_(1)
    z.sum().backward()  # <-


def inplace_on_saved_output(t):
    x = t.ones(2, requires_grad=True)
    y = x.exp()
    y.mul_(2)
    y.sum().backward()  # <-


def float16_array(t):
    a = np.ones(3, np.float16)
    return t.tensor(a)  # <-


def uint8_array(t):
    a = np.ones(3, np.uint8)
    return t.from_numpy(a)  # <-


def complex_array(t):
    a = np.ones(3, np.complex64)
    return t.tensor(a)  # <-


def object_array(t):
    a = np.array([1, "a"], dtype=object)
    return t.tensor(a)  # <-


def object_array_from_numpy(t):
    a = np.array([1, None], dtype=object)
    return t.from_numpy(a)  # <-


def string_data(t):
    return t.tensor("abc")  # <-


def string_in_list(t):
    return t.tensor([1.0, "a"])  # <-


def numpy_dtype_argument(t):
    return t.ones(2, dtype=np.float16)  # <-


def cast_to_numpy_dtype(t):
    x = t.ones(2)
    return x.to(np.float16)  # <-


def cast_to_unknown_dtype_keyword(t):
    x = t.ones(2)
    return x.to(dtype=np.float64)  # <-


def too_large(t):
    return t.zeros(2**46)  # <-  (256 TiB of float32: past any address space)


def too_large_to_count(t):
    return t.zeros(10**10, 10**10)  # <-


def too_large_result(t):
    x = t.ones(2**24)
    y = x[:, None] * x[None, :]
    return y.sum(0).tolist() if t is torch else y.numpy()  # <-  (a 4 PiB result)


def negative_size(t):
    return t.ones(2, -1)  # <-


def dim_out_of_range(t):
    x = t.ones(2, 3)
    return x.sum(5)  # <-


def cat_sizes(t):
    return t.cat([t.ones(2, 3), t.ones(2, 4)])  # <-


def expand_size(t):
    x = t.ones(2, 3)
    return x.expand(4, 3)  # <-


def item_of_many(t):
    x = t.ones(2)
    return x.item()  # <-


BAD = [
    Bad("non-broadcastable shapes", broadcast, RuntimeError, ("(3)", "(4)", "dimension 1")),
    Bad("non-broadcastable where", broadcast_where, RuntimeError, ("(3)", "(4)")),
    Bad("matmul inner dims", matmul_inner, RuntimeError, ("2x3", "4x5")),
    Bad("mm inner dims", mm_inner, RuntimeError, ("2x3", "4x5")),
    Bad("bmm inner dims", bmm_inner, RuntimeError, ("[2, 3]", "[2, 4]")),
    Bad("batched matmul inner dims", batched_matmul_inner, RuntimeError, ("4x3", "4x5")),
    Bad("mv inner dims", mv_inner, RuntimeError, ("2x3", "(4)")),
    Bad("dot lengths", dot_inner, RuntimeError, ("[3]", "[4]")),
    Bad("matmul dtypes", matmul_dtypes, RuntimeError, ("float", "double")),
    Bad("reshape element count", reshape_count, RuntimeError, ("[4]", "size 6")),
    Bad("view element count", view_count, RuntimeError, ("[4, -1]", "size 6")),
    Bad("index out of range", index_int, IndexError, ("index 5", "size 2")),
    Bad("negative index out of range", index_negative, IndexError, ("index -4", "size 3")),
    Bad("index tensor out of range", index_tensor, IndexError, ("index 5", "size 2")),
    # (PyTorch's message names dimension 0 of the index tensor; llgrad's the indexed dimension 1.)
    Bad("negative index tensor out of range", index_tensor_negative, IndexError, ("index -4", "size 3")),
    Bad("computed index tensor out of range", index_tensor_computed, IndexError, ("index 7", "size 3")),
    Bad("index assignment out of range", index_assign, IndexError, ("index 2", "size 2")),
    Bad("int tensor requiring grad", int_requires_grad, RuntimeError, ("floating point", "torch.int64")),
    Bad("requires_grad_() on int64", long_requires_grad_, RuntimeError, ("floating point", "torch.int64")),
    Bad("requires_grad = True on bool", bool_requires_grad_, RuntimeError, ("floating point", "torch.bool")),
    Bad("backward of a non-scalar without gradient", backward_non_scalar, RuntimeError,
        ("scalar outputs", "[2]")),
    Bad("gradient of the wrong shape", gradient_wrong_shape, RuntimeError, ("[3]", "[2]")),
    Bad("gradient of the wrong shape for a 0-d output", gradient_for_0d_wrong_shape, RuntimeError,
        ("[1]", "[]")),
    Bad("second backward through freed values", second_backward, RuntimeError, ("a second time",)),
    Bad("in-place change of a saved input", inplace_on_saved, RuntimeError,
        ("inplace operation", "torch.FloatTensor [2]", "version 1")),
    Bad("in-place change of a saved output", inplace_on_saved_output, RuntimeError,
        ("inplace operation", "torch.FloatTensor [2]", "ExpBackward0")),
    Bad("float16 array", float16_array, TypeError, ("float16",), ACCEPTS, "llgrad has no float16"),
    Bad("uint8 array", uint8_array, TypeError, ("uint8",), ACCEPTS, "llgrad has no uint8"),
    Bad("complex array", complex_array, TypeError, ("complex64",), ACCEPTS, "llgrad has no complex dtypes"),
    Bad("object array", object_array, TypeError, ("object",)),
    Bad("object array to from_numpy", object_array_from_numpy, TypeError, ("object",)),
    Bad("string data", string_data, TypeError, ("str",)),
    Bad("string in a list", string_in_list, TypeError, ("str",)),
    Bad("NumPy dtype as dtype=", numpy_dtype_argument, TypeError, ("float16",)),
    Bad("cast to a NumPy dtype", cast_to_numpy_dtype, TypeError, ("float16",)),
    Bad("cast to dtype=<NumPy dtype>", cast_to_unknown_dtype_keyword, TypeError, ("float64",)),
    # PyTorch's allocator raises RuntimeError; llgrad raises Python's MemoryError, as the issue asks.
    Bad("tensor too large to allocate", too_large, MemoryError, ("70368744177664",), RuntimeError,
        "Python's type for a failed allocation"),
    Bad("tensor too large to even count its bytes", too_large_to_count, MemoryError,
        ("[10000000000, 10000000000]",), RuntimeError, "Python's type for a failed allocation"),
    Bad("result too large to allocate", too_large_result, MemoryError, ("[16777216, 16777216]", "float32"),
        RuntimeError,
        "Python's type for a failed allocation; raised where the value is needed (llgrad is lazy)"),
    Bad("negative size", negative_size, RuntimeError, ("-1", "[2, -1]")),
    Bad("dim out of range", dim_out_of_range, IndexError, ("[-2, 1]", "5")),
    Bad("cat sizes", cat_sizes, RuntimeError, ("size 3", "size 4")),
    Bad("expand to a wrong size", expand_size, RuntimeError, ("(4)", "(2)", "[4, 3]")),
    Bad("item of a multi-element tensor", item_of_many, RuntimeError, ("2 elements",)),
]

MARK = "# <-"


def _user_line(error: BaseException) -> str:
    """The source line of the last traceback frame in this file: where the user wrote it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == __file__]
    return frames[-1].line if frames else ""


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.name)
def test_bad_input_raises_at_the_op(case: Bad) -> None:
    with pytest.raises(BaseException) as info:
        case.program(llgrad)
    error = info.value
    assert isinstance(error, case.error), f"{type(error).__name__}: {error}"
    for text in case.says:
        assert text in str(error), f"{text!r} missing from: {error}"
    assert MARK in _user_line(error), f"raised at {_user_line(error)!r}, not at the op"


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.name)
def test_pytorch_agrees(case: Bad) -> None:
    if torch is None:
        pytest.skip("PyTorch is not installed")
    if case.pytorch_raises is None:
        case.program(torch)  # the documented difference (`why`): PyTorch supports more dtypes
        return
    with pytest.raises(case.pytorch_raises):
        case.program(torch)


def test_index_tensors_are_checked_before_any_kernel_runs() -> None:
    x = llgrad.ones(3) * 2  # pending: nothing computed yet
    runs = llgrad.runtime.stats()["runs"]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[llgrad.tensor([0, 3])]
    assert llgrad.runtime.stats()["runs"] == runs and x._node.buffer is None
    with pytest.raises(IndexError, match="index -4 is out of bounds"):
        x[llgrad.tensor([-4])] = 1.0
    assert x.tolist() == [2.0, 2.0, 2.0]


# -- awkward but valid inputs: they must work and give the right values ------------------------

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-45, 3.0e38, 2.0], dtype=np.float32)


def _ieee(t, data):
    x = t.tensor(data, requires_grad=True)
    with np.errstate(all="ignore"):
        outs = [x.exp(), x.log(), x.sqrt(), x.tanh(), x.sigmoid(), x / 0, 1 / x, x * 0, x * x, x.relu(),
                x.abs(), t.clamp(x, -1, 1), (x > 0).float(), x.sum(), x.max(), x.amax(), x.cumsum(0),
                x.softmax(0), x.mean(), t.maximum(x, t.zeros_like(x))]
    values = [o.detach().numpy().astype(np.float64) for o in outs]
    (x * x + x.exp()).sum().backward()
    return values + [x.grad.numpy().astype(np.float64)]


def _numpy_ieee(data):
    """The elementwise part of `_ieee` in NumPy float32: IEEE semantics."""
    x = data
    with np.errstate(all="ignore"):
        return [np.exp(x), np.log(x), np.sqrt(x), np.tanh(x), 1 / (1 + np.exp(-x)), x / np.float32(0),
                np.float32(1) / x, x * np.float32(0), x * x]


def test_nan_and_inf_inputs_propagate_as_ieee_says() -> None:
    got = _ieee(llgrad, SPECIAL)
    for i, (a, b) in enumerate(zip(got, _numpy_ieee(SPECIAL))):
        np.testing.assert_allclose(a, b.astype(np.float64), rtol=1e-6, err_msg=f"output {i}")
    if torch is not None:
        for i, (a, b) in enumerate(zip(got, _ieee(torch, SPECIAL))):
            np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=f"output {i} vs PyTorch")


def _layouts() -> dict:
    base = np.arange(24, dtype=np.float64).reshape(4, 6) - 7.5
    read_only = base.copy()
    read_only.flags.writeable = False
    raw = bytearray(8 * 24 + 1)
    misaligned = np.frombuffer(raw, dtype=np.float64, count=24, offset=1).reshape(4, 6)
    misaligned[...] = base  # frombuffer of a bytearray is writable
    raw32 = bytearray(4 * 24 + 3)
    misaligned32 = np.frombuffer(raw32, dtype=np.float32, count=24, offset=3).reshape(4, 6)
    misaligned32[...] = base
    return {
        "non-contiguous (strided columns)": base[:, ::2],
        "non-contiguous (transposed)": base.T,
        "negative strides": base[::-1, ::-2],
        "read-only": read_only,
        "misaligned float64": misaligned,
        "misaligned float32": misaligned32,
        "big-endian float32": base.astype(">f4"),
        "big-endian int64": base.astype(">i8"),
        "Fortran order": np.asfortranarray(base),
        "0-d": np.array(3.5),
        "broadcast (zero strides)": np.broadcast_to(base[:1], (4, 6)),
    }


@pytest.mark.parametrize("name", list(_layouts()))
@pytest.mark.parametrize("make", ["tensor", "from_numpy"])
def test_numpy_layouts_give_the_right_values(name: str, make: str) -> None:
    array = _layouts()[name]
    assert not array.flags.aligned or "misaligned" not in name  # the case is what it says
    x = getattr(llgrad, make)(array)
    expected = np.asarray(array)
    assert x.dtype.np == expected.dtype.newbyteorder("=") and tuple(x.shape) == expected.shape
    np.testing.assert_array_equal(x.numpy(), expected)
    np.testing.assert_array_equal((x * 2 + 1).numpy(), expected * 2 + 1)
    if expected.ndim:
        np.testing.assert_array_equal(x.sum(0).numpy(), expected.sum(0))


# -- after all of that, a normal step still computes the right answer -----------------------------

def test_a_normal_step_after_every_bad_input() -> None:
    for case in BAD:
        with pytest.raises(case.error):
            case.program(llgrad)
    for name in _layouts():
        llgrad.tensor(_layouts()[name]).sum().item()
    _ieee(llgrad, SPECIAL)

    rng = np.random.default_rng(0)
    xs, ws, ts = rng.normal(size=(8, 5)), rng.normal(size=(5, 3)), rng.normal(size=(8, 3))
    x, w, target = llgrad.tensor(xs), llgrad.tensor(ws, requires_grad=True), llgrad.tensor(ts)
    loss = ((x @ w).tanh() - target).pow(2).mean()
    loss.backward()
    h = np.tanh(xs @ ws)
    expected_loss = np.mean((h - ts) ** 2)
    expected_grad = xs.T @ (2 * (h - ts) / h.size * (1 - h**2))
    np.testing.assert_allclose(loss.item(), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), expected_grad, rtol=1e-10)

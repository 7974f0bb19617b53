"""The op functions of the public API (torch.add, torch.exp, x.sum(dim)...).

Each parses PyTorch's calling conventions and records one IR op through
`apply`; the op's rules live in the op table. `bind_methods` attaches them
to Tensor as methods and operators.
"""

from __future__ import annotations

import builtins
import math
import numbers
import sys
import types
from collections import namedtuple

from llgrad.compiler import dtypes
from llgrad.compiler.ops import on_register
from llgrad.compiler.ops.shapes import normalize_dims, reduced_shape

from . import indexing, scalars, trace_state, views
from .autograd.function import node_class
from .dispatch import apply, scalar_value
from .layout import view_strides
from .tensor import Size, Tensor

_Number = (numbers.Number,)


_SCALARS = (int, float, bool)


def named(fn, name: str):
    """A copy of `fn` called `name`: Python's own argument errors ("exp() got an unexpected
    keyword argument 'decimals'") then name the op the user called, as PyTorch's do, not the
    factory that made it (`_unary.<locals>.fn()`) nor the op an alias stands for."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__, copy.__doc__, copy.__module__ = fn.__kwdefaults__, fn.__doc__, fn.__module__
    copy.__dict__.update(fn.__dict__)
    copy.__qualname__ = name
    return copy


def _call_as(name: str, fn, *args, **kwargs):
    """fn(*args, **kwargs) for a wrapper called `name`: an error binding fn's arguments is the
    user's call of `name` (raised with that name), any other error is fn's own."""
    try:
        return fn(*args, **kwargs)
    except TypeError as e:
        if e.__traceback__.tb_next is not None or not str(e).startswith(fn.__name__ + "()"):
            raise  # raised inside fn, not by the call itself
        raise TypeError(name + str(e)[len(fn.__name__):]) from None


def _is_operand(x) -> bool:
    t = type(x)
    return t is Tensor or t in _SCALARS or isinstance(x, (Tensor, numbers.Number))


# -- arithmetic -------------------------------------------------------------------

def add(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    return apply("add", input, other)


def sub(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    if not isinstance(input, Tensor):
        return apply("rsub", other, input)
    return apply("sub", input, other)


def rsub(input, other, *, alpha=1) -> Tensor:
    return sub(other, input, alpha=alpha)


def mul(input, other) -> Tensor:
    if not isinstance(input, Tensor):
        input, other = other, input
    return apply("mul", input, other)


def div(input, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode is not None:
        raise NotImplementedError("div(rounding_mode=...) is not supported yet")
    if not isinstance(input, Tensor):
        # PyTorch computes `2 / x` as reciprocal(x) * 2 (MulBackward0 over ReciprocalBackward0).
        return mul(apply("reciprocal", other), input)
    return apply("div", input, other)


true_divide = named(div, "true_divide")


def pow(input, exponent) -> Tensor:
    if isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        if not input.dtype.is_floating_point:  # an integer result holds the exponent: checked
            exponent = scalars.checked_for(exponent, input.dtype, input._node.promotion_kind())
        return apply("pow_scalar", input, exponent=scalar_value(scalars.parsed(exponent)))
    if not isinstance(input, Tensor):
        return apply("rpow", exponent, input)
    return apply("pow", input, exponent)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return apply("maximum", input, other)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return apply("minimum", input, other)


def where(condition: Tensor, input=None, other=None) -> Tensor:
    if input is None and other is None:
        raise NotImplementedError("where(condition) (nonzero indices) is not supported")
    return apply("where", condition, *_checked_scalars((input, other)))


def _checked_scalars(operands: tuple) -> tuple:
    """Python numbers among an op's operands, checked against the op's result dtype (PyTorch
    stores them in it: int32 with 2**40 overflows, where arithmetic would wrap)."""
    if builtins.all(isinstance(x, Tensor) for x in operands):
        return operands
    kinds = [(x.dtype, x._node.promotion_kind()) if isinstance(x, Tensor) else
             (dtypes.scalar_dtype(scalars.parsed(x)), "scalar") for x in operands]
    result = dtypes.result_type(kinds)
    return tuple(x if isinstance(x, Tensor) else scalars.checked(x, result) for x in operands)


def bitwise_not(input: Tensor) -> Tensor:
    """~x: logical not of bools, bitwise not of integers (-x - 1 in two's complement)."""
    if input.dtype is dtypes.bool_:
        return apply("logical_not", input)
    if input.dtype.is_floating_point:
        raise TypeError(f"~ (operator.invert) is only implemented on integer and Boolean-type tensors, "
                        f"got {input.dtype!r}")
    return sub(apply("neg", input), 1)


def logical_and(input, other) -> Tensor:
    return apply("logical_and", input, other)


def logical_or(input, other) -> Tensor:
    return apply("logical_or", input, other)


def _compare(name: str):
    def fn(input, other) -> Tensor:
        return apply(name, input, other)

    return named(fn, name)


eq, ne, lt, le, gt, ge = (_compare(n) for n in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, greater_equal, less, less_equal, not_equal = (
    named(f, n) for f, n in ((gt, "greater"), (ge, "greater_equal"), (lt, "less"), (le, "less_equal"),
                             (ne, "not_equal")))


def equal(input: Tensor, other: Tensor) -> bool:
    if input.shape != other.shape:
        return False
    return bool(eq(input, other).all()) if input.numel() else True


def all(input: Tensor, dim=None, keepdim=False) -> Tensor:
    return _logical_reduce("min", input, dim, keepdim, empty=True)


def any(input: Tensor, dim=None, keepdim=False) -> Tensor:
    return _logical_reduce("max", input, dim, keepdim, empty=False)


def _logical_reduce(name: str, input: Tensor, dim, keepdim: bool, empty: bool) -> Tensor:
    """all() as min and any() as max of bools; over nothing, True and False (PyTorch), where
    min and max of nothing are errors."""
    dims = _dims(dim)
    shape = tuple(input.shape)
    axes = normalize_dims(dims, len(shape))
    if builtins.any(shape[d] == 0 for d in axes):
        from .creation import full

        return full(reduced_shape(shape, axes, keepdim), empty, dtype=dtypes.bool_)
    return apply(name, apply("cast", input, dtype=dtypes.bool_), dims=dims, keepdim=keepdim)


# -- reductions ---------------------------------------------------------------------

def _dims(dim):
    if dim is None:
        return None
    if isinstance(dim, (list, tuple, Size)):
        return tuple(dim)
    return (dim,)


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = to(input, dtype)
    return apply("sum", input, dims=_dims(dim), keepdim=keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = to(input, dtype)
    return apply("mean", input, dims=_dims(dim), keepdim=keepdim)


_MinMax = namedtuple("_MinMax", ["values", "indices"])


class _ReturnTypes:
    """torch.return_types.max(values=..., indices=...)"""

    @staticmethod
    def make(name: str):
        cls = namedtuple(name, ["values", "indices"])
        cls.__repr__ = lambda self: (f"torch.return_types.{name}(\nvalues={self.values!r},\n"
                                     f"indices={self.indices!r})")
        return cls


_max_result = _ReturnTypes.make("max")
_min_result = _ReturnTypes.make("min")


def _extreme(name: str, result_type):
    def fn(input: Tensor, dim=None, keepdim: bool = False, *, out=None):
        if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
            return apply("maximum" if name == "max" else "minimum", input, dim)
        if dim is None:
            if keepdim:
                raise TypeError(f"{name}() received an invalid combination of arguments: keepdim without dim")
            return apply(name, input, dims=None, keepdim=False)
        if not isinstance(dim, numbers.Integral):
            raise TypeError(f"{name}(): argument 'dim' must be int, not {type(dim).__name__}")
        values = apply(name, input, dims=(dim,), keepdim=keepdim)
        indices = apply("arg" + name, input, dims=(dim,), keepdim=keepdim)
        return result_type(values, indices)

    return named(fn, name)


max = _extreme("max", _max_result)
min = _extreme("min", _min_result)


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    return apply("amax", input, dims=_dims(dim) or None, keepdim=keepdim)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    return apply("amin", input, dims=_dims(dim) or None, keepdim=keepdim)


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return apply("argmax", reshape(input, (-1,)), dims=(0,), keepdim=False)
    return apply("argmax", input, dims=(dim,), keepdim=keepdim)


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return apply("argmin", reshape(input, (-1,)), dims=(0,), keepdim=False)
    return apply("argmin", input, dims=(dim,), keepdim=keepdim)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    if p in ("fro", None):
        p = 2.0
    if isinstance(p, str):
        raise NotImplementedError(f"norm(p={p!r}) is not supported")
    return apply("norm", input, p=float(p), dims=_dims(dim), keepdim=keepdim)


# -- linear algebra -------------------------------------------------------------------

def dot(input: Tensor, other: Tensor) -> Tensor:
    return apply("dot", input, other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    return apply("mm", input, mat2)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    return apply("mv", input, vec)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    a, b = input.dim(), other.dim()
    if a == 0 or b == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {a}D and {b}D")
    if a == 1 and b == 1:
        return dot(input, other)
    if a == 2 and b == 2:
        return mm(input, other)
    if a == 2 and b == 1:
        return mv(input, other)
    if a == 1 and b == 2:
        return squeeze(mm(unsqueeze(input, 0), other), 0)
    return _batched_matmul(input, other)



# -- issue-3 ops ------------------------------------------------------------------------

def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Half to even; with decimals, at that decimal place (negative: left of the point), computed
    as PyTorch does: round(x * 10^d) / 10^d, or round(x / 10^-d) * 10^-d."""
    if isinstance(decimals, bool) or not isinstance(decimals, numbers.Integral):
        raise TypeError(f"round(): argument 'decimals' must be int, not {type(decimals).__name__}")
    if decimals == 0:
        return apply("round", input)
    scale = 10.0 ** builtins.abs(int(decimals))
    if decimals > 0:
        out = div(apply("round", mul(input, scale)), scale)
    else:
        out = mul(apply("round", div(input, scale)), scale)
    if out._grad_fn is not None:  # PyTorch's node for round(decimals=...)
        out._grad_fn.__class__ = node_class("RoundBackward1")
    return out

def square(input: Tensor) -> Tensor:
    return apply("pow_scalar", input, exponent=2)


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    tensor_bounds = isinstance(min, Tensor) or isinstance(max, Tensor)
    bounds = [b for b in (min, max) if b is not None]
    if not tensor_bounds:
        bounds = list(_checked_scalars((input, *bounds))[1:])
    return apply("clamp", input, *bounds, has_min=min is not None, has_max=max is not None,
                 variant="clamp_tensor" if tensor_bounds else "clamp")


clip = named(clamp, "clip")


def clamp_min(input: Tensor, min) -> Tensor:
    min = min if isinstance(min, Tensor) else _checked_scalars((input, min))[1]
    return apply("clamp", input, min, has_min=True, has_max=False, variant="clamp_min")


def clamp_max(input: Tensor, max) -> Tensor:
    max = max if isinstance(max, Tensor) else _checked_scalars((input, max))[1]
    return apply("clamp", input, max, has_min=False, has_max=True, variant="clamp_max")


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """PyTorch stores the value in input's dtype, checked: a number, or a 0-d tensor's value
    (read, unless a compiled step is being traced and the value is not computed yet)."""
    if isinstance(value, Tensor):
        if value.dtype is not input.dtype:
            if not value.dim() and (value._node.buffer is not None or trace_state.active() is None):
                scalars.checked(value.item(), input.dtype)
            value = apply("cast", value, dtype=input.dtype)
    else:
        value = scalars.checked(value, input.dtype)
    return apply("masked_fill", input, mask, value)


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    if dtype is not None:
        input = to(input, dtype)
    return apply("softmax", input, dim=dim)


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    if dtype is not None:
        input = to(input, dtype)
    return apply("log_softmax", input, dim=dim)


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    return apply("logsumexp", input, dims=_dims(dim), keepdim=keepdim)


def _correction(unbiased, correction) -> float:
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    if isinstance(dim, bool):  # var(unbiased) legacy overload
        dim, unbiased = None, dim
    return apply("var", input, dims=_dims(dim), keepdim=keepdim, correction=_correction(unbiased, correction))


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return apply("std", input, dims=_dims(dim), keepdim=keepdim, correction=_correction(unbiased, correction))


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = to(input, dtype)
    return apply("prod", input, dims=None if dim is None else (dim,), keepdim=keepdim)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = to(input, dtype)
    return apply("cumsum", input, dim=dim)


def flip(input: Tensor, *dims) -> Tensor:
    return apply("flip", input, dims=_shape_arg(dims))


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    return apply("cat", *tensors, dim=dim)


concat, concatenate = named(cat, "concat"), named(cat, "concatenate")


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    return apply("stack", *tensors, dim=dim)


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    from llgrad.compiler.ops.shapes import normalize_dim

    d = normalize_dim(dim, tensor.dim())
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size "
                               f"of {n}")
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] if size and n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                               f"size at dimension {d}), but got split_sizes={sizes}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(apply("split", tensor, dim=d, start=start, stop=start + size, step=1))
        start += size
    return tuple(pieces)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    n = input.shape[dim]
    if not n:  # PyTorch: `chunks` empty pieces
        return split(input, [0] * chunks, dim)
    return split(input, builtins.max(1, -(-n // chunks)), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    from llgrad.compiler.ops.shapes import normalize_dim

    d = normalize_dim(dim, input.dim())
    return tuple(apply("unbind", input, dim=d, index=i) for i in range(input.shape[d]))


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    from llgrad.compiler.ops.shapes import normalize_dim

    d = normalize_dim(dim, input.dim())
    n = input.shape[d]
    if start < 0:
        start += n
    if not (0 <= start <= n and 0 <= length and start + length <= n):
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return apply("slice", input, dim=d, start=start, stop=start + length, step=1)


def select(input: Tensor, dim: int, index: int) -> Tensor:
    return apply("select", input, dim=dim, index=index)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    return apply("bmm", input, mat2)


def _batched_matmul(a: Tensor, b: Tensor) -> Tensor:
    """matmul with a batch: broadcast the batch dims, fold them into one, bmm, unfold."""
    from llgrad.compiler.ops.shapes import broadcast

    a1 = unsqueeze(a, 0) if a.dim() == 1 else a
    b1 = unsqueeze(b, -1) if b.dim() == 1 else b
    if a1.shape[-1] != b1.shape[-2]:  # PyTorch's message for the path its matmul takes
        rows, k = math.prod(a1.shape[:-1]), a1.shape[-1]
        if b.dim() == 1:
            raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{k}), vec ({b.shape[0]})")
        if b.dim() == 2:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and "
                               f"{b.shape[0]}x{b.shape[1]})")
        batch2 = math.prod(broadcast(tuple(a1.shape[:-2]), tuple(b1.shape[:-2])))
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{batch2}, {k}] but got: [{batch2}, {b1.shape[-2]}].")
    batch = broadcast(tuple(a1.shape[:-2]), tuple(b1.shape[:-2]))
    n, k, m = a1.shape[-2], a1.shape[-1], b1.shape[-1]
    count = math.prod(batch)
    a3 = reshape(expand(a1, batch + (n, k)), (count, n, k))
    b3 = reshape(expand(b1, batch + (k, m)), (count, k, m))
    out_shape = batch + ((n,) if a.dim() > 1 else ()) + ((m,) if b.dim() > 1 else ())
    return apply("unsafe_view", bmm(a3, b3), shape=out_shape)


# -- views ---------------------------------------------------------------------------

def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _infer_size(shape: tuple, numel: int) -> tuple:
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    return shape


def reshape(input: Tensor, *shape) -> Tensor:
    shape = _infer_size(_shape_arg(shape), input.numel())
    if view_strides(tuple(input.shape), input.stride(), shape) is not None:
        if not input.is_contiguous():  # PyTorch's _reshape_alias (ReshapeAliasBackward0)
            return apply("reshape", input, shape=shape, alias=True)
        return apply("reshape", input, shape=shape)
    # Not expressible as a view of this memory layout: PyTorch copies, then views the copy.
    return apply("unsafe_view", clone(input), shape=shape)


def view(input: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], dtypes.DType):
        raise NotImplementedError("view(dtype) is not supported")
    shape = _infer_size(_shape_arg(shape), input.numel())
    if view_strides(tuple(input.shape), input.stride(), shape) is None:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                           "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    return apply("reshape", input, shape=shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    shape = tuple(input.shape)
    if not shape:
        return reshape(input, (1,))
    from llgrad.compiler.ops.shapes import normalize_dim

    s, e = normalize_dim(start_dim, len(shape)), normalize_dim(end_dim, len(shape))
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    return reshape(input, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def squeeze(input: Tensor, dim=None) -> Tensor:
    return apply("squeeze", input, dims=_dims(dim))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return apply("unsqueeze", input, dim=dim)


def permute(input: Tensor, *dims) -> Tensor:
    return apply("permute", input, dims=_shape_arg(dims))


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    from llgrad.compiler.ops.shapes import normalize_dim

    n = input.dim()
    d0, d1 = normalize_dim(dim0, builtins.max(n, 1)), normalize_dim(dim1, builtins.max(n, 1))
    dims = list(range(n))
    if n:
        dims[d0], dims[d1] = dims[d1], dims[d0]
    return apply("transpose", input, dims=tuple(dims))


swapaxes, swapdims = named(transpose, "swapaxes"), named(transpose, "swapdims")


def t(input: Tensor) -> Tensor:
    n = input.dim()
    if n > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {n}D")
    return apply("t", input, dims=tuple(reversed(range(n))))


def expand(input: Tensor, *sizes) -> Tensor:
    return apply("expand", input, shape=_shape_arg(sizes))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, tuple(other.shape))


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return view(input, tuple(other.shape))


def _T(input: Tensor) -> Tensor:
    return apply("permute", input, dims=tuple(reversed(range(input.dim()))))


# -- dtype conversion ------------------------------------------------------------------

def to(input: Tensor, *args, dtype=None, copy: bool = False, device=None, non_blocking: bool = False,
       memory_format=None) -> Tensor:
    if device is not None:
        args += (str(device),)
    for a in args:
        if isinstance(a, dtypes.DType):
            dtype = a
        elif isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, str) and a.split(":")[0] != "cpu":
            raise RuntimeError(f"Invalid device string: '{a}' (llgrad runs on the CPU only)")
        elif not isinstance(a, (str, bool)):  # ignoring it would silently keep the old dtype
            raise TypeError(f"to() received an invalid combination of arguments - got {a!r}; expected "
                            "a dtype (torch.float32, float64, int64, int32, bool), a tensor or 'cpu'")
    if dtype is not None and not isinstance(dtype, dtypes.DType):
        raise TypeError(f"to(): dtype must be one of llgrad's dtypes (torch.float32, float64, int64, int32, "
                        f"bool), got {dtype!r}")
    if dtype is None or (dtype is input.dtype and not copy):
        return input
    return apply("cast", input, dtype=dtype)


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return apply("clone", input)


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    return input if input.is_contiguous() else clone(input)


def _cast_method(dtype, name: str):
    def method(self: Tensor) -> Tensor:
        return to(self, dtype)

    return named(method, name)


# -- in-place ------------------------------------------------------------------------

def _cap(dt: dtypes.DType) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}[dt.name]


def _commit_result(self: Tensor, result: Tensor, overwrite: bool = False) -> Tensor:
    """Cast/check an op's result and make it self's value in place."""
    if result.dtype is not self.dtype:
        if result.dtype.category > self.dtype.category:  # PyTorch's canCast: never float -> int -> bool
            raise RuntimeError(f"result type {_cap(result.dtype)} can't be cast to the desired output type "
                               f"{_cap(self.dtype)}")
        op_fn = result._grad_fn
        result = apply("cast", result, dtype=self.dtype)
        if op_fn is not None and result._grad_fn is not None:  # PyTorch's node is the op's: it casts inside
            result._grad_fn.__class__ = type(op_fn)
    if tuple(result.shape) != tuple(self.shape):
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                           f"{list(result.shape)}")
    return views.commit(self, result, overwrite)


def _inplace(fn, name: str):
    def method(self: Tensor, *args, **kwargs) -> Tensor:
        views.check_inplace(self)
        return _commit_result(self, _call_as(name, fn, views.snapshot(self), *args, **kwargs))

    return named(method, name)


def _inplace_operator(fn, name: str):
    def method(self: Tensor, other):
        if not _is_operand(other):
            return NotImplemented
        views.check_inplace(self)
        return _commit_result(self, fn(views.snapshot(self), other))

    return named(method, name)


def _filled(self: Tensor, value) -> Tensor:
    if isinstance(value, Tensor) and value.dim():
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                           f"{value.dim()} dimensions.")
    value = value if isinstance(value, Tensor) else scalar_value(scalars.checked(value, self.dtype))
    return apply("expand", apply("cast", value, dtype=self.dtype), shape=tuple(self.shape))


def _zeros(self: Tensor) -> Tensor:
    return _filled(self, 0)


def _copied(self: Tensor, src, non_blocking: bool = False) -> Tensor:
    value = apply("cast", src if isinstance(src, Tensor) else scalar_value(src), dtype=self.dtype)
    if tuple(value.shape) == tuple(self.shape):
        return value
    return apply("expand", value, shape=tuple(self.shape))


def copy_into(view: Tensor, value) -> Tensor:
    """view.copy_(value) with broadcasting: what `x[...] = value` does for basic indices."""
    views.check_inplace(view)
    # PyTorch fills with a number or a 0-d tensor, and copies anything else
    name = "FillBackward3" if not isinstance(value, Tensor) or not value.dim() else "CopyBackwards"
    return _overwritten(_commit_result(view, _copied(view, value), overwrite=True), name)


def _overwritten(t: Tensor, name: str) -> Tensor:
    """PyTorch's name for the history of a whole tensor overwritten by copy_/fill_/zero_ (a
    view's base gets CopySlices instead); the node is the fresh one the write recorded."""
    if not t._view and t._grad_fn is not None:
        t._grad_fn.__class__ = node_class(name)
    return t


def _overwrite_method(fn, name_of, name: str):
    def method(self: Tensor, *args) -> Tensor:
        views.check_inplace(self)
        result = _commit_result(self, _call_as(name, fn, views.snapshot(self), *args), overwrite=True)
        return _overwritten(result, name_of(*args))

    return named(method, name)


_copy_ = _overwrite_method(_copied, lambda src, non_blocking=False: "CopyBackwards", "copy_")
_fill_ = _overwrite_method(_filled, lambda v: "FillBackward3" if isinstance(v, Tensor) else "FillBackward2",
                           "fill_")
_zero_ = _overwrite_method(_zeros, lambda: "ZeroBackward0", "zero_")


# -- binding -----------------------------------------------------------------------------

def _reflected(fn, name: str):
    def method(self, other):
        if not _is_operand(other):
            return NotImplemented
        return fn(other, self)

    return named(method, name)


def _forward(fn, name: str):
    def method(self, other):
        if not _is_operand(other):
            return NotImplemented
        return fn(self, other)

    return named(method, name)


def bind_methods() -> None:
    T = Tensor
    # (ops the op table marks public have their function and methods already: _expose)
    for name in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "logical_and", "logical_or", "eq",
                 "ne", "lt", "le", "gt", "ge", "sum", "mean", "max", "min", "amax", "amin", "argmax",
                 "argmin", "norm", "dot", "mm", "mv", "matmul", "reshape", "view", "flatten", "squeeze",
                 "unsqueeze", "permute", "transpose", "t", "expand", "expand_as", "to", "clone", "contiguous",
                 "all", "any", "equal", "where", "round", "fix", "square", "clamp", "clip", "clamp_min",
                 "clamp_max", "masked_fill", "softmax", "log_softmax", "logsumexp", "var", "std", "prod",
                 "cumsum", "flip", "split", "chunk", "unbind", "narrow", "bmm", "select", "bitwise_not"):
        setattr(T, name, globals()[name])
    for name in ("true_divide", "negative", "absolute", "greater", "less", "greater_equal", "less_equal",
                 "not_equal", "swapaxes", "swapdims"):
        setattr(T, name, globals()[name])
    T.view_as = view_as
    T.reshape_as = named(view_as, "reshape_as")
    T.T = property(_T)
    T.mT = property(lambda self: transpose(self, -2, -1))
    T.float = _cast_method(dtypes.float32, "float")
    T.double = _cast_method(dtypes.float64, "double")
    T.long = _cast_method(dtypes.int64, "long")
    T.int = _cast_method(dtypes.int32, "int")
    T.bool = _cast_method(dtypes.bool_, "bool")
    for name, fn in (("add", add), ("radd", add), ("sub", sub), ("mul", mul), ("rmul", mul),
                     ("truediv", div), ("pow", pow), ("matmul", matmul), ("eq", eq), ("ne", ne),
                     ("lt", lt), ("le", le), ("gt", gt), ("ge", ge), ("and", logical_and),
                     ("or", logical_or)):
        setattr(T, f"__{name}__", _forward(fn, f"__{name}__"))
    for name, fn in (("rsub", sub), ("rtruediv", div), ("rpow", pow), ("rmatmul", matmul)):
        setattr(T, f"__{name}__", _reflected(fn, f"__{name}__"))
    T.__neg__ = named(T.neg, "__neg__")
    T.__pos__ = lambda self: self
    T.__abs__ = named(T.abs, "__abs__")
    T.__invert__ = named(bitwise_not, "__invert__")
    T.__hash__ = object.__hash__
    for name, fn in (("add", add), ("sub", sub), ("mul", mul), ("div", div), ("pow", pow)):
        setattr(T, name + "_", _inplace(fn, name + "_"))
        operator = f"__i{name if name != 'div' else 'truediv'}__"
        setattr(T, operator, _inplace_operator(fn, operator))
    for name in ("clamp", "clamp_min", "clamp_max", "round", "square", "masked_fill", "cumsum"):
        setattr(T, name + "_", _inplace(globals()[name], name + "_"))
    T.clip_ = _inplace(clip, "clip_")
    T.zero_ = _zero_
    T.fill_ = _fill_
    T.copy_ = _copy_
    T.__getitem__ = indexing.getitem
    T.__setitem__ = indexing.setitem


__all__ = [
    "add", "sub", "rsub", "mul", "div", "true_divide", "pow", "negative", "maximum", "minimum", "where",
    "absolute", "logical_and", "logical_or", "eq", "ne", "lt", "le", "gt", "ge", "greater",
    "greater_equal", "less", "less_equal", "not_equal", "equal", "all", "any", "sum", "mean", "max",
    "min", "amax", "amin", "argmax", "argmin", "norm", "dot", "mm", "mv", "matmul", "bmm", "reshape",
    "flatten", "squeeze", "unsqueeze", "permute", "transpose", "swapaxes", "swapdims", "t", "expand_as",
    "clone", "round", "fix", "square", "clamp", "clip", "clamp_min", "clamp_max", "masked_fill",
    "softmax", "log_softmax", "logsumexp", "var", "std", "prod", "cumsum", "flip", "cat", "concat",
    "concatenate", "stack", "split", "chunk", "unbind", "narrow", "select", "bitwise_not",
]


def _expose(op) -> None:
    """An op the op table marks public (OpDef.public, a unary elementwise op whose function is
    just the op): `torch.<name>`, `Tensor.<name>` and `Tensor.<name>_`, from that one entry.
    Called for every op registered, now and later (an op a test or extension registers too)."""
    name = op.public
    if not name:
        return
    fn = named(lambda input: apply(op.name, input), name)
    globals()[name] = fn
    if name not in __all__:
        __all__.append(name)
    setattr(Tensor, name, fn)
    setattr(Tensor, name + "_", _inplace(fn, name + "_"))
    package = sys.modules.get("llgrad")
    if package is not None and hasattr(package, "Tensor"):  # registered after `import llgrad`
        setattr(package, name, fn)


on_register(_expose)
negative = named(neg, "negative")  # noqa: F821  (made by _expose)
absolute = named(abs, "absolute")  # noqa: F821
fix = named(trunc, "fix")  # noqa: F821
__all__ += ["negative", "absolute", "fix"]

"""Creation functions: tensor, ones, zeros, full, arange, linspace, eye, rand, randn, *_like...

They make realized buffers (NumPy allocates and fills them; no op math runs
here) with PyTorch's dtype inference: Python floats give float32, ints
int64, bools bool; NumPy arrays keep their dtype.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings

import numpy as np
from llgrad.compiler import dtypes
from llgrad.compiler.ops import input_node
from llgrad.compiler.ops.shapes import check_shape
from llgrad.runtime.buffer import Buffer

from . import scalars
from .tensor import Size, Tensor

_generator = np.random.Generator(np.random.PCG64(0))


def from_array(array: np.ndarray, requires_grad: bool = False, copy: bool = True) -> Tensor:
    """A leaf tensor holding `array` (copied unless `copy=False`, then never written)."""
    dtype = dtypes.from_numpy(array.dtype)
    if copy:
        array = np.array(array, dtype=dtype.np, order="C", copy=True)
    buf = Buffer(array)
    t = Tensor._from_node(input_node(buf, array.shape, dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _resolve_dtype(dtype) -> dtypes.DType | None:
    if dtype is None or isinstance(dtype, dtypes.DType):
        return dtype
    if dtype in (float, "float"):
        return dtypes.float32
    if dtype in (int, "int", "long"):
        return dtypes.int64
    if dtype in (bool, "bool"):
        return dtypes.bool_
    try:
        return dtypes.from_numpy(np.dtype(dtype))
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}; llgrad supports float32, float64, int64, "
                        "int32 and bool") from None


def _size(args, size=None) -> tuple:
    if size is not None:
        if args:
            raise TypeError("size given both positionally and by keyword")
        args = (size,)
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        args = tuple(args[0])
    shape = check_shape(args)
    if math.prod(shape) > sys.maxsize // 8:  # NumPy raises ValueError for sizes it cannot even count
        raise MemoryError(f"cannot allocate a tensor of size {list(shape)}: more bytes than can be addressed")
    return shape


def _infer_dtype(data) -> dtypes.DType:
    """PyTorch's dtype for nested Python data."""
    kinds = set()

    def walk(x):
        if isinstance(x, Tensor):
            kinds.add(x.dtype.category)
        elif isinstance(x, (bool, np.bool_)):
            kinds.add(dtypes.BOOL)
        elif isinstance(x, numbers.Integral):
            kinds.add(dtypes.INTEGER)
        elif isinstance(x, numbers.Real):
            kinds.add(dtypes.FLOATING)
        elif isinstance(x, (list, tuple)):
            for item in x:
                walk(item)
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")

    walk(data)
    if not kinds or dtypes.FLOATING in kinds:
        return dtypes.float32
    return dtypes.int64 if dtypes.INTEGER in kinds else dtypes.bool_


def _plain(data):
    """Nested data with 0-d tensors replaced by their Python values."""
    if isinstance(data, Tensor):
        if data.numel() != 1 and data.dim() != 0:
            return data.tolist()
        return data.item()
    if isinstance(data, (list, tuple)):
        return [_plain(x) for x in data]
    return data


def _check_ragged(data, shape=None, dim=0):
    if isinstance(data, (list, tuple)):
        lengths = [len(x) for x in data if isinstance(x, (list, tuple))]
        if lengths and (len(lengths) != len(data) or len(set(lengths)) != 1):
            expected = lengths[0] if lengths else 0
            got = next((len(x) if isinstance(x, (list, tuple)) else 0 for x in data
                        if not isinstance(x, (list, tuple)) or len(x) != expected), 0)
            raise ValueError(f"expected sequence of length {expected} at dim {dim + 1} (got {got})")
        for x in data:
            _check_ragged(x, shape, dim + 1)


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    dtype = _resolve_dtype(dtype)
    if isinstance(data, Tensor):
        warnings.warn(
            "To copy construct from a tensor, it is recommended to use sourceTensor.clone().detach() "
            "or sourceTensor.clone().detach().requires_grad_(True), rather than "
            "torch.tensor(sourceTensor).",
            UserWarning,
            stacklevel=2,
        )
        array = data.detach()._realize()
    elif isinstance(data, np.ndarray):
        array = data
        if dtype is None:
            dtype = dtypes.from_numpy(data.dtype)
    elif isinstance(data, np.generic):
        array = np.asarray(data)
        if dtype is None:
            dtype = dtypes.from_numpy(array.dtype)
    else:
        inferred = _infer_dtype(data)
        dtype = dtype or inferred
        _check_ragged(data)
        array = scalars.checked_data(np.array(_plain(data)), dtype, integers=not inferred.is_floating_point)
    if dtype is None:
        dtype = dtypes.from_numpy(array.dtype)
    if array.dtype.kind == "O":
        raise TypeError("tensor(): data must be a number or a (nested) sequence of numbers")
    with np.errstate(invalid="ignore", over="ignore"):  # an ndarray's values wrap, as in PyTorch
        return from_array(np.asarray(array).astype(dtype.np), requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or data.dtype is _resolve_dtype(dtype)):
        return data
    if isinstance(data, Tensor):
        from .functional import to

        return to(data, _resolve_dtype(dtype))
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtypes.from_numpy(array.dtype)  # TypeError for unsupported dtypes
    return from_array(array)


_LAYOUT_KWARGS = frozenset({"size", "layout", "pin_memory", "memory_format"})


def _only(name: str, kw: dict, known=_LAYOUT_KWARGS) -> None:
    """PyTorch's error for a keyword argument the creation function `name` does not take."""
    for key in kw:
        if key not in known:
            raise TypeError(f"{name}() got an unexpected keyword argument '{key}'")


def _filled(shape, value, dtype, requires_grad) -> Tensor:
    return from_array(np.full(shape, value, dtype=dtype.np), requires_grad, copy=False)


def zeros(*size, out=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    _only("zeros", kw)
    return _filled(_size(size, kw.get("size")), 0, _resolve_dtype(dtype) or dtypes.float32, requires_grad)


def ones(*size, out=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    _only("ones", kw)
    return _filled(_size(size, kw.get("size")), 1, _resolve_dtype(dtype) or dtypes.float32, requires_grad)


def empty(*size, out=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    _only("empty", kw)
    return zeros(*size, dtype=dtype, requires_grad=requires_grad, **kw)


def full(size, fill_value, *, out=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dtype = _resolve_dtype(dtype) or dtypes.scalar_dtype(fill_value)
    fill_value = scalars.checked(fill_value, dtype)
    return _filled(_size((size,)), fill_value, dtype, requires_grad)


def arange(start, end=None, step=1, *, out=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = values
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0 and end != start:
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    dtype = _resolve_dtype(dtype)
    if dtype is None:
        all_int = all(isinstance(v, numbers.Integral) for v in values)
        dtype = dtypes.int64 if all_int else dtypes.float32
    n = max(0, math.ceil((end - start) / step))
    # Computed in double then rounded once, as PyTorch's CPU kernel does.
    array = (start + np.arange(n, dtype=np.float64) * step) if dtype.is_floating_point else \
        start + np.arange(n, dtype=np.int64) * step
    return from_array(array.astype(dtype.np), requires_grad, copy=False)


def linspace(start, end, steps, *, out=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype = _resolve_dtype(dtype) or dtypes.float32
    steps = int(steps)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    if steps == 1:
        array = np.array([start], dtype=np.float64)
    else:
        # PyTorch fills the first half from start and the second half back from end.
        step = (end - start) / (steps - 1) if steps > 1 else 0.0
        i = np.arange(steps, dtype=np.float64)
        half = steps // 2
        array = np.where(i < half, start + step * i, end - step * (steps - 1 - i))
    if not dtype.is_floating_point:
        array = np.trunc(array)
    return from_array(array.astype(dtype.np), requires_grad, copy=False)


def eye(n, m=None, *, out=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype = _resolve_dtype(dtype) or dtypes.float32
    return from_array(np.eye(n, n if m is None else m, dtype=dtype.np), requires_grad, copy=False)


def manual_seed(seed: int):
    """Seed the generators behind rand/randn/randint (NumPy's PCG64; not PyTorch's stream) and dropout."""
    global _generator
    _generator = np.random.Generator(np.random.PCG64(int(seed)))
    from . import random  # the counter-based stream of dropout masks (llgrad.random)

    random.manual_seed(seed)
    return _generator


def seed() -> int:
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def rand(*size, generator=None, out=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    _only("rand", kw)
    dtype = _resolve_dtype(dtype) or dtypes.float32
    gen = generator if generator is not None else _generator
    array = gen.random(_size(size, kw.get("size")), dtype=np.float64).astype(dtype.np)
    return from_array(array, requires_grad, copy=False)


def randn(*size, generator=None, out=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    _only("randn", kw)
    dtype = _resolve_dtype(dtype) or dtypes.float32
    gen = generator if generator is not None else _generator
    array = gen.standard_normal(_size(size, kw.get("size")), dtype=np.float64).astype(dtype.np)
    return from_array(array, requires_grad, copy=False)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    if high is None:
        low, high = 0, low
    dtype = _resolve_dtype(dtype) or dtypes.int64
    gen = generator if generator is not None else _generator
    array = gen.integers(low, high, size=_size((size,)), dtype=np.int64).astype(dtype.np)
    return from_array(array, requires_grad, copy=False)


def _like(fn):
    name = fn.__name__ + "_like"

    def like(input: Tensor, *args, dtype=None, requires_grad=False, **kw) -> Tensor:
        _only(name, kw, {"layout", "device", "memory_format", "pin_memory"})
        return fn(tuple(input.shape), *args, dtype=dtype or input.dtype, requires_grad=requires_grad)

    like.__name__ = like.__qualname__ = name
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input: Tensor, fill_value, *, dtype=None, requires_grad=False, **kw) -> Tensor:
    _only("full_like", kw, {"layout", "device", "memory_format", "pin_memory"})
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad)


def legacy_tensor(dtype: dtypes.DType, *args, **kwargs) -> Tensor:
    """torch.Tensor(...), torch.FloatTensor(...): sizes, or data converted to `dtype`."""
    if kwargs.pop("device", None) not in (None, "cpu"):
        raise RuntimeError("llgrad runs on the CPU only")
    if kwargs:
        raise TypeError(f"unexpected keyword arguments {sorted(kwargs)}")
    if not args:
        return from_array(np.zeros((0,), dtype.np), copy=False)
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        data = args[0]
        if isinstance(data, Size):
            return zeros(tuple(data), dtype=dtype)
        if isinstance(data, Tensor):
            if data.dtype is not dtype:
                raise TypeError(f"expected {dtype!r} (got {data.dtype!r})")
            return data
        return tensor(data, dtype=dtype)
    return zeros(_size(args), dtype=dtype)


class _LegacyType(type):
    """torch.FloatTensor and friends: constructors, and isinstance checks by dtype."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls._dtype

    def __call__(cls, *args, **kwargs):
        return legacy_tensor(cls._dtype, *args, **kwargs)


def _legacy(name: str, dtype: dtypes.DType) -> type:
    return _LegacyType(name, (), {"_dtype": dtype})


FloatTensor = _legacy("FloatTensor", dtypes.float32)
DoubleTensor = _legacy("DoubleTensor", dtypes.float64)
LongTensor = _legacy("LongTensor", dtypes.int64)
IntTensor = _legacy("IntTensor", dtypes.int32)
BoolTensor = _legacy("BoolTensor", dtypes.bool_)

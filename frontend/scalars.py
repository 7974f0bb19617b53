"""Python numbers converted to a tensor's dtype, checked where PyTorch checks.

PyTorch converts a Python number it stores into a tensor (a fill value, a clamp
bound, a where() operand, an exponent, full(), the elements of tensor(data)) with a
range check, and raises "value cannot be converted to type int without overflow"
where it does not fit; arithmetic (x + 2**40) wraps instead, and so does llgrad. Its
argument parser takes a Python int as int64, else as uint64, and refuses anything
beyond with an OverflowError.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from llgrad.compiler import dtypes

# The C type PyTorch names in its message, and (for tensor()) the dtype's own name.
_C_NAME = {"int32": "int", "int64": "int64_t", "float32": "float", "float64": "double", "bool": "bool"}
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_FLOAT_MAX = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}


def parsed(value):
    """A Python int as PyTorch's argument parser accepts it (int64 or uint64), else OverflowError."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
        if value >= 2**64:
            raise OverflowError("int too big to convert")
        if value < -(2**63):
            raise OverflowError("can't convert negative int to unsigned")
    return value


def fits(value, dtype: dtypes.DType) -> bool:
    """Whether PyTorch's checked conversion of `value` to `dtype` succeeds."""
    name = dtype.name
    if name == "bool":
        return True
    if name in _INT_RANGE:
        lo, hi = _INT_RANGE[name]
        if isinstance(value, numbers.Integral):
            return lo <= int(value) <= hi
        v = float(value)  # compared in double, as PyTorch does (NaN never fits)
        return float(lo) <= v <= float(hi)
    v = float(value)
    return not (math.isfinite(v) and abs(v) > _FLOAT_MAX[name])  # inf and NaN are floats too


def checked(value, dtype: dtypes.DType, name: str | None = None):
    """`value` if it converts to `dtype` without overflow; PyTorch's RuntimeError if not.
    name: the type as the message calls it (default: the C type PyTorch's ops name)."""
    value = parsed(value)
    if not fits(value, dtype):
        shown = name or _C_NAME[dtype.name]
        raise RuntimeError(f"value cannot be converted to type {shown} without overflow")
    return value


def checked_for(value, tensor_dtype: dtypes.DType, kind: str = "dim"):
    """A Python number used with a tensor of `tensor_dtype`: checked against their result dtype
    (int32 with 2**31 stays int32 and overflows; int32 with 2.5 is float32)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return value
    result = dtypes.result_type([(tensor_dtype, kind), (dtypes.scalar_dtype(value), "scalar")])
    return checked(value, result)


def checked_data(array: np.ndarray, dtype: dtypes.DType, integers: bool) -> np.ndarray:
    """tensor(data, dtype) from Python numbers (as NumPy holds them; `integers`: the data had no
    float): PyTorch converts each with a check into an integer dtype ("value cannot be converted
    to type int32 without overflow"), and refuses an int beyond int64 ("Overflow when unpacking
    long long") unless a float dtype takes it. Float dtypes are not checked (1e300 in float32 is
    inf). The array, ready to cast."""
    kind = array.dtype.kind
    beyond = kind == "O" or (kind == "u" and array.size and array.max() > 2**63 - 1) or \
        (integers and kind == "f")  # NumPy holds ints beyond int64 as objects, uint64 or floats
    if beyond:
        if not dtype.is_floating_point:
            raise ValueError("Overflow when unpacking long long")
        return array.astype(np.float64)
    if dtype.name not in _INT_RANGE or not array.size:
        return array
    lo, hi = _INT_RANGE[dtype.name]
    if kind in "iub":
        ok = lo <= array.min() and array.max() <= hi
    else:
        with np.errstate(invalid="ignore"):
            ok = bool(np.all((array >= float(lo)) & (array <= float(hi))))  # NaN: False
    if not ok:
        raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow")
    return array

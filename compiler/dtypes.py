"""Element types of the IR and PyTorch's type-promotion rules.

The five dtypes llgrad supports, their NumPy and LLVM counterparts, and
`result_type`, which reproduces `torch.result_type` including its special
treatment of Python scalars ("wrapped numbers") and 0-d tensors.
"""

from __future__ import annotations

import numpy as np

# Category order used by promotion: bool < integer < floating.
BOOL, INTEGER, FLOATING = 0, 1, 2


class DType:
    """An element type. Instances are singletons compared by identity."""

    __slots__ = ("name", "np", "category", "itemsize", "rank")

    def __init__(self, name: str, np_dtype: type, category: int, rank: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category
        self.itemsize = self.np.itemsize
        self.rank = rank  # position in the promotion lattice within a category

    @property
    def is_floating_point(self) -> bool:
        return self.category == FLOATING

    @property
    def is_signed(self) -> bool:
        return self.category != BOOL

    def __repr__(self) -> str:
        # PyTorch prints dtypes as torch.float32; tutorials compare that text.
        return f"torch.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


bool_ = DType("bool", np.bool_, BOOL, 0)
int32 = DType("int32", np.int32, INTEGER, 1)
int64 = DType("int64", np.int64, INTEGER, 2)
float32 = DType("float32", np.float32, FLOATING, 1)
float64 = DType("float64", np.float64, FLOATING, 2)

ALL = (bool_, int32, int64, float32, float64)
_BY_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}

DEFAULT_FLOAT = float32
DEFAULT_INT = int64


def _by_name(name: str) -> DType:
    return _BY_NAME[name]


def from_numpy(np_dtype) -> DType:
    """The DType for a NumPy dtype; TypeError for the ones llgrad lacks."""
    d = _BY_NP.get(np.dtype(np_dtype).newbyteorder("="))  # big-endian data converts on copy
    if d is None:
        raise TypeError(
            f"can't convert np.ndarray of type numpy.{np.dtype(np_dtype).name}. "
            "The only supported types are: float64, float32, int64, int32, and bool."
        )
    return d


def promote(a: DType, b: DType) -> DType:
    """torch.promote_types for the supported dtypes."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    return a if a.rank >= b.rank else b


def scalar_dtype(value) -> DType:
    """The dtype a Python number is treated as (bool before int: bool is an int)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return DEFAULT_INT
    return DEFAULT_FLOAT


def result_type(operands) -> DType:
    """torch.result_type over `(dtype, kind)` pairs.

    kind is "dim" for tensors with at least one dimension, "zero" for 0-d
    tensors and "scalar" for Python numbers. A higher kind only decides the
    dtype within a category the lower kinds do not reach (so float32 tensors
    stay float32 when added to a float64 0-d tensor or a Python float).
    """
    dim = zero = scalar = None
    for dtype, kind in operands:
        if kind == "dim":
            dim = dtype if dim is None else promote(dim, dtype)
        elif kind == "zero":
            zero = dtype if zero is None else promote(zero, dtype)
        else:
            scalar = dtype if scalar is None else promote(scalar, dtype)
    return _combine(dim, _combine(zero, scalar))


def _combine(higher: DType | None, lower: DType | None) -> DType | None:
    if higher is None:
        return lower
    if lower is None or higher.category == FLOATING:
        return higher
    if higher is bool_ or lower.category == FLOATING:
        return promote(higher, lower)
    return higher

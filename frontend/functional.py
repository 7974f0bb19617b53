"""The op functions of the public API (torch.add, torch.exp, x.sum(dim)...).

Each parses PyTorch's calling conventions and records one IR op through
`apply`; the op's rules live in the op table. `bind_methods` attaches them
to Tensor as methods and operators.
"""

from __future__ import annotations

import math
import numbers
from collections import namedtuple

from llgrad.compiler import dtypes

from .autograd import grad_mode
from .dispatch import apply, scalar_value
from .tensor import Size, Tensor

_Number = (numbers.Number,)


_SCALARS = (int, float, bool)


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
        return mul(reciprocal(other), input)
    return apply("div", input, other)


true_divide = div


def pow(input, exponent) -> Tensor:
    if isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        return apply("pow_scalar", input, exponent=scalar_value(exponent))
    if not isinstance(input, Tensor):
        return apply("rpow", exponent, input)
    return apply("pow", input, exponent)


def neg(input: Tensor) -> Tensor:
    return apply("neg", input)


negative = neg


def reciprocal(input: Tensor) -> Tensor:
    return apply("reciprocal", input)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return apply("maximum", input, other)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return apply("minimum", input, other)


def where(condition: Tensor, input=None, other=None) -> Tensor:
    if input is None and other is None:
        raise NotImplementedError("where(condition) (nonzero indices) is not supported")
    return apply("where", condition, input, other)


def _unary(name: str):
    def fn(input: Tensor) -> Tensor:
        return apply(name, input)

    fn.__name__ = name
    return fn


exp = _unary("exp")
log = _unary("log")
sqrt = _unary("sqrt")
sin = _unary("sin")
cos = _unary("cos")
tanh = _unary("tanh")
sigmoid = _unary("sigmoid")
relu = _unary("relu")
abs = _unary("abs")
sign = _unary("sign")
logical_not = _unary("logical_not")
absolute = abs


def logical_and(input, other) -> Tensor:
    return apply("logical_and", input, other)


def logical_or(input, other) -> Tensor:
    return apply("logical_or", input, other)


def _compare(name: str):
    def fn(input, other) -> Tensor:
        return apply(name, input, other)

    fn.__name__ = name
    return fn


eq, ne, lt, le, gt, ge = (_compare(n) for n in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def equal(input: Tensor, other: Tensor) -> bool:
    if input.shape != other.shape:
        return False
    return bool(eq(input, other).all()) if input.numel() else True


def all(input: Tensor, dim=None, keepdim=False) -> Tensor:
    return apply("min", apply("cast", input, dtype=dtypes.bool_), dims=_dims(dim), keepdim=keepdim)


def any(input: Tensor, dim=None, keepdim=False) -> Tensor:
    return apply("max", apply("cast", input, dtype=dtypes.bool_), dims=_dims(dim), keepdim=keepdim)


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

    fn.__name__ = name
    return fn


max = _extreme("max", _max_result)
min = _extreme("min", _min_result)


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    return apply("max", input, dims=_dims(dim) or None, keepdim=keepdim)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    return apply("min", input, dims=_dims(dim) or None, keepdim=keepdim)


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
    raise NotImplementedError("matmul of tensors with more than 2 dims is not supported yet")


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
    return apply("reshape", input, shape=shape)


def view(input: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], dtypes.DType):
        raise NotImplementedError("view(dtype) is not supported")
    return reshape(input, *shape)


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
    d0, d1 = normalize_dim(dim0, max(n, 1)), normalize_dim(dim1, max(n, 1))
    dims = list(range(n))
    if n:
        dims[d0], dims[d1] = dims[d1], dims[d0]
    return apply("transpose", input, dims=tuple(dims))


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    n = input.dim()
    if n > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {n}D")
    return apply("t", input, dims=tuple(reversed(range(n))))


def expand(input: Tensor, *sizes) -> Tensor:
    return apply("expand", input, shape=_shape_arg(sizes))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, tuple(other.shape))


def _T(input: Tensor) -> Tensor:
    return apply("permute", input, dims=tuple(reversed(range(input.dim()))))


# -- dtype conversion ------------------------------------------------------------------

def to(input: Tensor, *args, dtype=None, copy: bool = False, **kwargs) -> Tensor:
    for a in args:
        if isinstance(a, dtypes.DType):
            dtype = a
        elif isinstance(a, Tensor):
            dtype = a.dtype
    if dtype is None or (dtype is input.dtype and not copy):
        return input
    return apply("cast", input, dtype=dtype)


def clone(input: Tensor) -> Tensor:
    # A copy is an identity op that keeps the graph: x * 1 would change names; use cast to self.
    out = apply("cast", input, dtype=input.dtype)
    if out._grad_fn is not None:
        from .autograd.function import node_class

        out._grad_fn.__class__ = node_class("CloneBackward0")
    return out


def contiguous(input: Tensor) -> Tensor:
    return input


def _cast_method(dtype):
    return lambda self: to(self, dtype)


# -- in-place ------------------------------------------------------------------------

def _check_inplace(t: Tensor) -> None:
    if t._grad_fn is None and t._requires_grad and grad_mode.is_grad_enabled():
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def _inplace(fn):
    def method(self: Tensor, *args, **kwargs) -> Tensor:
        _check_inplace(self)
        result = fn(self, *args, **kwargs)
        if result.dtype is not self.dtype:
            if dtypes.promote(result.dtype, self.dtype) is not self.dtype:
                raise RuntimeError(
                    f"result type {_cap(result.dtype)} can't be cast to the desired output type "
                    f"{_cap(self.dtype)}"
                )
            result = apply("cast", result, dtype=self.dtype)
        if tuple(result.shape) != tuple(self.shape):
            raise RuntimeError(
                f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                f"{list(result.shape)}"
            )
        self._set_node(result._node)
        if result._grad_fn is not None:
            self._grad_fn = result._grad_fn
            self._requires_grad = True
            if result._grad_fn._saved:
                for saved in result._grad_fn._saved.values():
                    if saved.is_output:
                        saved.counter = self._vc
                        saved.version = self._vc.value
        return self

    method.__name__ = fn.__name__ + "_"
    return method


def _cap(dt: dtypes.DType) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}[dt.name]


def _fill(self: Tensor, value) -> Tensor:
    if isinstance(value, Tensor) and value.dim():
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                           f"{value.dim()} dimensions.")
    value = value if isinstance(value, Tensor) else scalar_value(value)
    return apply("expand", apply("cast", value, dtype=self.dtype), shape=tuple(self.shape))


def _zero(self: Tensor) -> Tensor:
    return _fill(self, 0)


def _copy(self: Tensor, src: Tensor, non_blocking: bool = False) -> Tensor:
    src = src if isinstance(src, Tensor) else scalar_value(src)
    value = apply("cast", src, dtype=self.dtype)
    if tuple(value.shape) == tuple(self.shape):
        return value
    return apply("expand", value, shape=tuple(self.shape))


# -- binding -----------------------------------------------------------------------------

def _reflected(fn):
    def method(self, other):
        if not _is_operand(other):
            return NotImplemented
        return fn(other, self)

    return method


def _forward(fn):
    def method(self, other):
        if not _is_operand(other):
            return NotImplemented
        return fn(self, other)

    return method


def bind_methods() -> None:
    T = Tensor
    for name in ("add", "sub", "mul", "div", "pow", "neg", "reciprocal", "maximum", "minimum", "exp",
                 "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "sign", "logical_not",
                 "logical_and", "logical_or", "eq", "ne", "lt", "le", "gt", "ge", "sum", "mean", "max",
                 "min", "amax", "amin", "argmax", "argmin", "norm", "dot", "mm", "mv", "matmul",
                 "reshape", "view", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "t",
                 "expand", "expand_as", "to", "clone", "contiguous", "all", "any", "equal", "where"):
        setattr(T, name, globals()[name])
    T.true_divide = T.div
    T.negative = T.neg
    T.absolute = T.abs
    T.greater, T.less, T.greater_equal, T.less_equal, T.not_equal = T.gt, T.lt, T.ge, T.le, T.ne
    T.swapaxes = T.swapdims = T.transpose
    T.view_as = lambda self, other: reshape(self, tuple(other.shape))
    T.reshape_as = T.view_as
    T.T = property(_T)
    T.mT = property(lambda self: transpose(self, -2, -1))
    T.float = _cast_method(dtypes.float32)
    T.double = _cast_method(dtypes.float64)
    T.long = _cast_method(dtypes.int64)
    T.int = _cast_method(dtypes.int32)
    T.bool = _cast_method(dtypes.bool_)
    T.__add__ = T.__radd__ = _forward(add)
    T.__sub__ = _forward(sub)
    T.__rsub__ = _reflected(sub)
    T.__mul__ = T.__rmul__ = _forward(mul)
    T.__truediv__ = _forward(div)
    T.__rtruediv__ = _reflected(div)
    T.__pow__ = _forward(pow)
    T.__rpow__ = _reflected(pow)
    T.__matmul__ = _forward(matmul)
    T.__rmatmul__ = _reflected(matmul)
    T.__neg__ = neg
    T.__pos__ = lambda self: self
    T.__abs__ = abs
    T.__invert__ = logical_not
    T.__and__ = _forward(logical_and)
    T.__or__ = _forward(logical_or)
    T.__eq__ = _forward(eq)
    T.__ne__ = _forward(ne)
    T.__lt__ = _forward(lt)
    T.__le__ = _forward(le)
    T.__gt__ = _forward(gt)
    T.__ge__ = _forward(ge)
    T.__hash__ = object.__hash__
    for name, fn in (("add", add), ("sub", sub), ("mul", mul), ("div", div), ("pow", pow)):
        setattr(T, name + "_", _inplace(fn))
        setattr(T, f"__i{name if name != 'div' else 'truediv'}__", _inplace(_forward(fn)))
    T.neg_ = _inplace(neg)
    T.clamp_min_ = _inplace(lambda s, v: maximum(s, _fill(s, v)))
    T.zero_ = _inplace(_zero)
    T.fill_ = _inplace(_fill)
    T.copy_ = _inplace(_copy)
    T.exp_ = _inplace(exp)
    T.relu_ = _inplace(relu)
    T.sigmoid_ = _inplace(sigmoid)
    T.tanh_ = _inplace(tanh)

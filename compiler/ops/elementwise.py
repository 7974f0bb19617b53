"""Elementwise ops: broadcasting shape rule, PyTorch dtype promotion, VJP, scalar lowering.

Lowerings receive their arguments already converted to the op's compute dtype
and return the result in the op's output dtype (bool results as LLVM i1).
"""

from __future__ import annotations

from .. import dtypes
from ..dtypes import bool_, float32
from ..graph import OpDef
from . import register
from .shapes import broadcast


def _promoted(srcs) -> dtypes.DType:
    first = srcs[0].dtype
    for s in srcs:
        if s.dtype is not first:
            kinds = tuple([(s.dtype, s.promotion_kind()) for s in srcs])
            dt = _PROMOTED.get(kinds)
            if dt is None:
                dt = _PROMOTED[kinds] = dtypes.result_type(kinds)
            return dt
    return first


_PROMOTED: dict = {}  # ((dtype, kind), ...) -> promoted dtype: a few dozen entries at most


def _to_float(dt: dtypes.DType) -> dtypes.DType:
    return dt if dt.is_floating_point else float32


# -- shape/dtype rules --------------------------------------------------------

def _same_infer(srcs, attrs):
    """Result in the promoted dtype (add, mul, maximum, ...)."""
    return broadcast(*(s.shape for s in srcs)), _promoted(srcs)


def _float_infer(srcs, attrs):
    """Integer inputs compute in the default float dtype (exp, div, ...)."""
    return broadcast(*(s.shape for s in srcs)), _to_float(_promoted(srcs))


def _bool_infer(srcs, attrs):
    return broadcast(*(s.shape for s in srcs)), bool_


def _sub_infer(srcs, attrs):
    shape, dt = _same_infer(srcs, attrs)
    if dt is bool_:
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. "
            "Use the `^` or `logical_xor()` operator instead."
        )
    return shape, dt


def _neg_infer(srcs, attrs):
    if srcs[0].dtype is bool_:
        raise RuntimeError(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are "
            "trying to invert a mask, use the `~` or `logical_not()` operator instead."
        )
    return srcs[0].shape, srcs[0].dtype


def _numeric_infer(name: str):
    def infer(srcs, attrs):
        if srcs[0].dtype is bool_:
            raise RuntimeError(f"\"{name}\" not implemented for 'Bool'")
        return srcs[0].shape, srcs[0].dtype

    return infer


def _cast_infer(srcs, attrs):
    return srcs[0].shape, attrs["dtype"]


def _where_infer(srcs, attrs):
    cond, a, b = srcs
    if cond.dtype is not bool_:
        raise RuntimeError(
            "where expected condition to be a boolean tensor, but got a tensor with "
            f"dtype {_scalar_type_name(cond.dtype)}"
        )
    return broadcast(cond.shape, a.shape, b.shape), _promoted((a, b))


def _pow_scalar_infer(srcs, attrs):
    (x,) = srcs
    exponent = attrs["exponent"]
    dt = dtypes.result_type([(x.dtype, x.promotion_kind()), (dtypes.scalar_dtype(exponent), "scalar")])
    if not dt.is_floating_point and isinstance(exponent, int) and exponent < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return x.shape, dt


def _scalar_type_name(dt: dtypes.DType) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}[dt.name]


# -- compute dtypes: (dtype each argument is converted to, dtype the op runs in) --

def _compute_out(node):
    return (node.dtype,) * len(node.srcs), node.dtype


def _compute_promoted(node):
    dt = _promoted(node.srcs)
    return (dt,) * len(node.srcs), dt


def _compute_src(node):
    return (node.srcs[0].dtype,), node.srcs[0].dtype


def _compute_bool(node):
    return (bool_,) * len(node.srcs), bool_


def _compute_where(node):
    return (bool_, node.dtype, node.dtype), node.dtype


# -- scalar rules: one element, against the scalar builder `s` (compiler/scalar.py) ---------

def _arith(op: str, bool_op: str | None = None):
    """A binary arithmetic op; on bools PyTorch's add is `or` and its mul `and`."""
    def rule(s, args, dt, attrs):
        return s.binary(bool_op if dt is bool_ and bool_op else op, args[0], args[1], dt)

    return rule


def _cmp(pred: str):
    return lambda s, args, dt, attrs: s.compare(pred, args[0], args[1], dt)


def _math(name: str):
    return lambda s, args, dt, attrs: s.math(name, args[0], dt)


def _rule_abs(s, args, dt, attrs):
    (x,) = args
    if dt.is_floating_point:
        return s.math("fabs", x, dt)
    return s.select(s.compare("<", x, s.const(0, dt), dt), s.neg(x, dt), x, dt)


def _rule_sign(s, args, dt, attrs):
    (x,) = args
    if dt is bool_:
        return x
    zero = s.const(0, dt)
    if dt.is_floating_point:  # ordered compares: sign(NaN) is 0, as in PyTorch
        pos = s.convert(s.compare(">", x, zero, dt), bool_, dt)
        neg = s.convert(s.compare("<", x, zero, dt), bool_, dt)
        return s.binary("sub", pos, neg, dt)
    one = s.const(1, dt)
    pos = s.select(s.compare(">", x, zero, dt), one, zero, dt)
    neg = s.select(s.compare("<", x, zero, dt), one, zero, dt)
    return s.binary("sub", pos, neg, dt)


def _rule_relu(s, args, dt, attrs):
    (x,) = args
    zero = s.const(0, dt)
    return s.select(s.compare("<", x, zero, dt), zero, x, dt)  # `x < 0 ? 0 : x` keeps NaN, as torch.relu


def _rule_reciprocal(s, args, dt, attrs):
    return s.binary("div", s.const(1.0, dt), args[0], dt)


def _rule_rsqrt(s, args, dt, attrs):
    return s.binary("div", s.const(1.0, dt), s.math("sqrt", args[0], dt), dt)


def _rule_sigmoid(s, args, dt, attrs):
    return s.math("sigmoid", args[0], dt)


def _rounding(fn: str):
    return lambda s, args, dt, attrs: s.math(fn, args[0], dt) if dt.is_floating_point else args[0]


def _rule_clamp(s, args, dt, attrs):
    x, rest = args[0], list(args[1:])
    if attrs["has_min"]:
        x = s.binary("max", x, rest.pop(0), dt)
    if attrs["has_max"]:
        x = s.binary("min", x, rest.pop(0), dt)
    return x


# -- VJP rules -------------------------------------------------------------------

def _vjp_add(e, g, c):
    return g, g


def _vjp_sub(e, g, c):
    return g, (e.neg(g) if c.needs[1] else None)


def _vjp_rsub(e, g, c):
    return (e.neg(g),)


def _vjp_mul(e, g, c):
    x, y = c.srcs
    return (e.mul(g, y) if c.needs[0] else None, e.mul(g, x) if c.needs[1] else None)


def _vjp_div(e, g, c):
    x, y = c.srcs
    gx = e.div(g, y) if c.needs[0] else None
    gy = e.neg(e.mul(g, e.div(e.div(x, y), y))) if c.needs[1] else None
    return gx, gy


def _vjp_neg(e, g, c):
    return (e.neg(g),)


def _vjp_exp(e, g, c):
    return (e.mul(g, c.out),)


def _vjp_log(e, g, c):
    return (e.div(g, c.srcs[0]),)


def _vjp_sqrt(e, g, c):
    return (e.div(g, e.mul(c.out, 2)),)


def _vjp_sin(e, g, c):
    return (e.mul(g, e.cos(c.srcs[0])),)


def _vjp_cos(e, g, c):
    return (e.mul(g, e.neg(e.sin(c.srcs[0]))),)


def _vjp_tanh(e, g, c):
    y = c.out
    return (e.mul(g, e.rsub(e.mul(y, y), 1)),)


def _vjp_sigmoid(e, g, c):
    y = c.out
    return (e.mul(e.mul(g, e.rsub(y, 1)), y),)


def _vjp_relu(e, g, c):
    return (e.where(e.gt(c.out, 0), g, 0),)


def _vjp_abs(e, g, c):
    return (e.mul(g, e.sign(c.srcs[0])),)


def _vjp_reciprocal(e, g, c):
    y = c.out
    return (e.mul(e.neg(g), e.mul(y, y)),)


def _vjp_pow_scalar(e, g, c):
    p = c.attrs["exponent"]
    x = c.srcs[0]
    if p == 0:
        return (e.mul(g, 0),)
    return (e.mul(g, e.mul(e.pow_scalar(x, exponent=p - 1), p)),)


def _vjp_pow(e, g, c):
    x, y = c.srcs
    gx = gy = None
    if c.needs[0]:
        gx = e.where(e.eq(y, 0), 0, e.mul(g, e.mul(y, e.pow(x, e.sub(y, 1)))))
    if c.needs[1]:
        # d/dy x**y = x**y * log(x); PyTorch masks x == 0, y >= 0 to zero.
        mask = e.logical_and(e.eq(x, 0), e.ge(y, 0))
        gy = e.where(mask, 0, e.mul(g, e.mul(c.out, e.log(x))))
    return gx, gy


def _vjp_rpow(e, g, c):
    y, base = c.srcs
    grad = e.mul(g, e.mul(c.out, e.log(e.cast(base, dtype=c.out.dtype))))
    return (e.where(e.logical_and(e.eq(base, 0), e.ge(y, 0)), 0, grad),)


def _minmax_vjp(loser: str):
    def vjp(e, g, c):
        x, y = c.srcs
        # Ties split the gradient in half between the two inputs, as in PyTorch.
        shared = e.where(e.eq(x, y), e.div(g, 2), g)
        gx = e.where(getattr(e, loser)(x, y), 0, shared) if c.needs[0] else None
        gy = e.where(getattr(e, loser)(y, x), 0, shared) if c.needs[1] else None
        return gx, gy

    return vjp


def _vjp_where(e, g, c):
    cond = c.srcs[0]
    return (
        None,
        e.where(cond, g, 0) if c.needs[1] else None,
        e.where(cond, 0, g) if c.needs[2] else None,
    )


def _vjp_cast(e, g, c):
    return (g,)


def _vjp_zero(e, g, c):
    # PyTorch's zeros_like(grad): +0 everywhere, even where the incoming gradient is NaN or
    # infinite or negative (g * 0 would give NaN and -0 there)
    return (e.where(True, 0, g),)


def _vjp_log1p(e, g, c):
    return (e.div(g, e.add(c.srcs[0], 1)),)


def _vjp_expm1(e, g, c):
    return (e.mul(g, e.add(c.out, 1)),)


def _vjp_rsqrt(e, g, c):
    y = c.out
    return (e.mul(e.mul(g, -0.5), e.mul(e.mul(y, y), y)),)


def _vjp_exp2(e, g, c):
    return (e.mul(e.mul(g, c.out), 0.6931471805599453),)


def _vjp_identity(e, g, c):
    return (g,)


def _vjp_masked_fill(e, g, c):
    mask = c.srcs[1]
    gx = e.where(mask, 0, g) if c.needs[0] else None
    gv = e.sum(e.where(mask, g, 0), dims=None, keepdim=False) if c.needs[2] else None
    return gx, None, gv


def _clamp_srcs(c):
    srcs = list(c.srcs)
    x = srcs.pop(0)
    lo = srcs.pop(0) if c.attrs["has_min"] else None
    hi = srcs.pop(0) if c.attrs["has_max"] else None
    return x, lo, hi


def _vjp_clamp(e, g, c):
    x, lo, hi = _clamp_srcs(c)
    keep = None
    if lo is not None:
        keep = e.ge(x, lo)
    if hi is not None:
        le = e.le(x, hi)
        keep = le if keep is None else e.logical_and(keep, le)
    grads = [e.where(keep, g, 0) if c.needs[0] else None]
    # A tensor bound gets the gradient where it clipped; crossed bounds (lo > hi) give hi
    # everywhere, and lo == hi gives neither (PyTorch's clamp_backward_min_max).
    if lo is not None and c.needs[len(grads)]:
        clipped = e.lt(x, lo) if hi is None else e.logical_and(e.lt(x, lo), e.lt(lo, hi))
        grads.append(e.where(clipped, g, 0))
    elif lo is not None:
        grads.append(None)
    if hi is not None and c.needs[len(grads)]:
        clipped = e.gt(x, hi) if lo is None else e.logical_or(e.gt(x, hi), e.lt(hi, lo))
        grads.append(e.where(clipped, g, 0))
    elif hi is not None:
        grads.append(None)
    return tuple(grads)


def _clamp_infer(srcs, attrs):
    return broadcast(*(s.shape for s in srcs)), _promoted(srcs)


def _clamp_name(attrs) -> str:
    return {"clamp": "ClampBackward1", "clamp_tensor": "ClampBackward0",
            "clamp_min": "ClampMinBackward0", "clamp_max": "ClampMaxBackward0"}[attrs["variant"]]


def _masked_fill_infer(srcs, attrs):
    x, mask, value = srcs
    if mask.dtype is not bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{_scalar_type_name(mask.dtype).lower()}")
    if value.shape:
        raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got tensor "
                           f"with {len(value.shape)} dimension(s).")
    return broadcast(x.shape, mask.shape), x.dtype


def _compute_masked_fill(node):
    return (node.dtype, bool_, node.dtype), node.dtype


# -- the entries -----------------------------------------------------------------

def define(name: str, infer, scalar, vjp=None, saves=None, grad_fn=None, compute=_compute_out, **kw) -> OpDef:
    """Register an elementwise op: its shape/dtype rule (`same_infer`, `float_infer`...), its
    scalar rule (compiler/scalar.py), its VJP in IR ops, what the VJP saves, PyTorch's name for
    its backward node, and `public=` the name under which the frontend exposes it. That one
    entry is the whole op: codegen, the MLIR printers, autograd and `torch.<name>` follow."""
    return register(OpDef(name, "elementwise", infer, scalar=scalar, vjp=vjp, saves=saves,
                          grad_fn=grad_fn, compute=compute, **kw))


_ew = define
same_infer, float_infer, bool_infer = _same_infer, _float_infer, _bool_infer


_ew("add", _same_infer, _arith("add", "or"), _vjp_add, grad_fn="AddBackward0")
_ew("sub", _sub_infer, _arith("sub"), _vjp_sub, grad_fn="SubBackward0")
# rsub(x, s) = s - x: `2 - x` in PyTorch has its own backward node.
_ew("rsub", _sub_infer, lambda s, a, dt, at: s.binary("sub", a[1], a[0], dt), _vjp_rsub,
    grad_fn="RsubBackward1", edges=(0,))
_ew("mul", _same_infer, _arith("mul", "and"), _vjp_mul, saves={0: (1,), 1: (0,)}, grad_fn="MulBackward0")
_ew("div", _float_infer, _arith("div"), _vjp_div, saves={0: (1,), 1: (0, 1)}, grad_fn="DivBackward0")
# (PyTorch saves the result for either gradient: an in-place change of it makes backward raise)
_ew("pow", _same_infer, lambda s, a, dt, at: s.pow(a[0], a[1], dt), _vjp_pow,
    saves={0: (0, 1, "out"), 1: (0, 1, "out")}, grad_fn="PowBackward1")
# rpow(x, s) = s ** x for a Python-number base.
_ew("rpow", _same_infer, lambda s, a, dt, at: s.pow(a[1], a[0], dt), _vjp_rpow, saves={0: (0, 1, "out")},
    grad_fn="PowBackward2", edges=(0,))
_ew("pow_scalar", _pow_scalar_infer, lambda s, a, dt, at: s.pow_const(a[0], at["exponent"], dt),
    _vjp_pow_scalar, saves={0: (0,)}, grad_fn="PowBackward0")
_ew("maximum", _same_infer, _arith("max"), _minmax_vjp("lt"), saves={0: (0, 1), 1: (0, 1)},
    grad_fn="MaximumBackward0")
_ew("minimum", _same_infer, _arith("min"), _minmax_vjp("gt"), saves={0: (0, 1), 1: (0, 1)},
    grad_fn="MinimumBackward0")

for _name, _pred in (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")):
    _ew(_name, _bool_infer, _cmp(_pred), compute=_compute_promoted)

_ew("logical_and", _bool_infer, _arith("and"), compute=_compute_bool)
_ew("logical_or", _bool_infer, _arith("or"), compute=_compute_bool)
_ew("logical_not", _bool_infer, lambda s, a, dt, at: s.not_(a[0]), compute=_compute_bool,
    public="logical_not")

_ew("neg", _neg_infer, lambda s, a, dt, at: s.neg(a[0], dt), _vjp_neg, grad_fn="NegBackward0", public="neg")
_ew("exp", _float_infer, _math("exp"), _vjp_exp, saves={0: ("out",)}, grad_fn="ExpBackward0", public="exp")
_ew("log", _float_infer, _math("log"), _vjp_log, saves={0: (0,)}, grad_fn="LogBackward0", public="log")
_ew("sqrt", _float_infer, _math("sqrt"), _vjp_sqrt, saves={0: ("out",)}, grad_fn="SqrtBackward0",
    public="sqrt")
_ew("sin", _float_infer, _math("sin"), _vjp_sin, saves={0: (0,)}, grad_fn="SinBackward0", public="sin")
_ew("cos", _float_infer, _math("cos"), _vjp_cos, saves={0: (0,)}, grad_fn="CosBackward0", public="cos")
_ew("tanh", _float_infer, _math("tanh"), _vjp_tanh, saves={0: ("out",)}, grad_fn="TanhBackward0",
    public="tanh")
_ew("sigmoid", _float_infer, _rule_sigmoid, _vjp_sigmoid, saves={0: ("out",)}, grad_fn="SigmoidBackward0",
    public="sigmoid")
_ew("relu", _numeric_infer("relu"), _rule_relu, _vjp_relu, saves={0: ("out",)}, grad_fn="ReluBackward0",
    public="relu")
_ew("abs", _numeric_infer("abs"), _rule_abs, _vjp_abs, saves={0: (0,)}, grad_fn="AbsBackward0", public="abs")
_ew("sign", _same_infer, _rule_sign, _vjp_zero, grad_fn="SignBackward0", public="sign")
_ew("reciprocal", _float_infer, _rule_reciprocal, _vjp_reciprocal, saves={0: ("out",)},
    grad_fn="ReciprocalBackward0", public="reciprocal")
_ew("cast", _cast_infer, lambda s, a, dt, at: s.convert(a[0], dt, at["dtype"]), _vjp_cast,
    grad_fn="ToCopyBackward0", compute=_compute_src)
_ew("where", _where_infer, lambda s, a, dt, at: s.select(a[0], a[1], a[2], dt), _vjp_where,
    saves={1: (0,), 2: (0,)}, grad_fn="WhereBackward0", edges=(1, 2), compute=_compute_where)

_ew("log1p", _float_infer, _math("log1p"), _vjp_log1p, saves={0: (0,)}, grad_fn="Log1PBackward0",
    public="log1p")
_ew("expm1", _float_infer, _math("expm1"), _vjp_expm1, saves={0: ("out",)}, grad_fn="Expm1Backward0",
    public="expm1")
_ew("exp2", _float_infer, _math("exp2"), _vjp_exp2, saves={0: ("out",)}, grad_fn="Exp2Backward0",
    public="exp2")
_ew("rsqrt", _float_infer, _rule_rsqrt, _vjp_rsqrt, saves={0: ("out",)}, grad_fn="RsqrtBackward0",
    public="rsqrt")
# Rounding has a zero gradient almost everywhere (PyTorch returns zeros, not an error).
_ew("floor", _same_infer, _rounding("floor"), _vjp_zero, grad_fn="FloorBackward0", public="floor")
_ew("ceil", _same_infer, _rounding("ceil"), _vjp_zero, grad_fn="CeilBackward0", public="ceil")
_ew("round", _same_infer, _rounding("roundeven"), _vjp_zero, grad_fn="RoundBackward0")
_ew("trunc", _same_infer, _rounding("trunc"), _vjp_zero, grad_fn="TruncBackward0", public="trunc")
_ew("clone", lambda srcs, attrs: (srcs[0].shape, srcs[0].dtype), lambda s, a, dt, at: a[0],
    _vjp_identity, grad_fn="CloneBackward0")
_ew("masked_fill", _masked_fill_infer, lambda s, a, dt, at: s.select(a[1], a[2], a[0], dt), _vjp_masked_fill,
    saves={0: (1,), 2: (1,)}, grad_fn="MaskedFillBackward0", compute=_compute_masked_fill)
# clamp(x[, lo][, hi]): attrs say which bounds are present and which PyTorch overload it is.
_ew("clamp", _clamp_infer, _rule_clamp, _vjp_clamp, saves={0: (0, 1, 2), 1: (0, 1, 2), 2: (0, 1, 2)},
    grad_fn=_clamp_name)
# a * b + c: the inner step of a matmul loop written out (compiler/schedule.py), no frontend op
_ew("fma", _same_infer, lambda s, a, dt, at: s.fma(a[0], a[1], a[2], dt))

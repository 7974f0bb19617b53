"""Generators of steps: each adds one or a few ops (and fresh leaves shaped to fit) to a
Builder, or returns None when the op does not fit the values drawn so far."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from .builder import FLOAT, NUMERIC, SCALARS, Builder, _broadcasts
from .graph import Ref
from .reference import is_float

# -- generators: each adds one or a few steps; None when the op does not fit -------------


def gen_binary(b: Builder):
    name = b.draw(st.sampled_from(["add", "mul", "sub", "div", "maximum", "minimum", "pow"]))
    if name == "pow":
        base = b.positive(b.operand(FLOAT))
        return b.add("pow", (base, b.partner(b.rv(base).shape, FLOAT)))
    dtypes = None if name in ("add", "mul", "maximum", "minimum", "div") else NUMERIC
    a = b.operand(dtypes)
    other = b.partner(b.rv(a).shape, dtypes)
    if b.draw(st.booleans()):
        a, other = other, a
    return b.add(name, (a, other))


def gen_scalar(b: Builder):
    """An op with a Python number on either side: x + 2, 3 - x, x ** 2, 2 ** x..."""
    name = b.draw(st.sampled_from(["add", "mul", "sub", "div", "pow", "rpow"]))
    a = b.operand(NUMERIC)
    s = b.draw(st.sampled_from(SCALARS))
    if name == "pow":
        p = b.draw(st.sampled_from([2, 3, 0.5, -1, 1.5, -2, 0]))
        if not is_float(b.rv(a).dtype):
            p = b.draw(st.sampled_from([2, 3, 0]))
        elif p != int(p):
            a = b.positive(a)
        return b.add("pow", (a, p))
    if name == "rpow":
        if not is_float(b.rv(a).dtype):
            return None
        return b.add("pow", (b.draw(st.sampled_from([2, 0.5, 1.5])), a))
    if name == "div" and s == 0:
        return None
    return b.add(name, (s, a) if b.draw(st.booleans()) else (a, s))


UNARY = (
    "exp",
    "log",
    "tanh",
    "sigmoid",
    "relu",
    "abs",
    "sqrt",
    "neg",
    "sin",
    "reciprocal",
    "square",
    "sign",
    "floor",
    "round",
    "log1p",
    "expm1",
    "rsqrt",
    "invert",
)


def gen_unary(b: Builder):
    name = b.draw(st.sampled_from(UNARY))
    if name == "invert":  # ~x: integers and bools only
        return b.add(name, (b.operand(("int64", "int32", "bool")),))
    if name in ("relu", "abs", "neg", "square", "sign", "floor", "round"):
        a = b.operand(NUMERIC)
        return b.add(name, (a,))
    a = b.operand(NUMERIC)
    if name in ("log", "sqrt", "rsqrt", "log1p") and b.draw(st.integers(0, 9)) != 0:
        a = b.positive(a)
    return b.add(name, (a,))


def gen_compare(b: Builder):
    name = b.draw(st.sampled_from(["lt", "gt", "le", "ge", "eq", "ne"]))
    a = b.operand()
    other = b.partner(b.rv(a).shape) if b.draw(st.booleans()) else b.draw(st.sampled_from(SCALARS))
    return b.add(name, (a, other))


def _condition(b: Builder, shape: tuple) -> Ref:
    found = b.pick(lambda rv: rv.dtype == "bool" and _broadcasts(rv.shape, shape))
    if found is not None and b.draw(st.booleans()):
        return found
    x = b.partner(shape, FLOAT)
    return b.add(b.draw(st.sampled_from(["gt", "lt"])), (x, b.draw(st.sampled_from([0, 0.5, -0.5]))))


def gen_where(b: Builder):
    a = b.operand()
    cond = _condition(b, b.rv(a).shape)
    shape = np.broadcast_shapes(b.rv(a).shape, b.rv(cond).shape)
    other = b.partner(shape) if b.draw(st.integers(0, 2)) else b.draw(st.sampled_from(SCALARS))
    args = (cond, a, other) if b.draw(st.booleans()) else (cond, other, a)
    return b.add("where", args)


def gen_clamp(b: Builder):
    x = b.operand(NUMERIC)
    form = b.draw(st.sampled_from(["both", "min", "max", "tensors"]))
    if form == "tensors":
        lo = b.partner(b.rv(x).shape, NUMERIC)
        hi = b.partner(b.rv(x).shape, NUMERIC) if b.draw(st.booleans()) else None
        return b.add("clamp", (x, lo, hi))
    lo = b.draw(st.sampled_from([-0.5, 0, -1]))
    hi = b.draw(st.sampled_from([0.5, 1, 1.5, -1]))
    return b.add("clamp", (x, lo if form != "max" else None, hi if form != "min" else None))


def gen_cast(b: Builder):
    method = b.draw(st.sampled_from(["float", "double", "long", "int", "bool"]))
    a = b.operand()
    v = b.rv(a).value
    if method in ("long", "int") and is_float(b.rv(a).dtype) and not np.all(np.abs(v) < 1e6):
        return None  # float -> int of NaN, inf or huge values is undefined behaviour
    return b.add(method, (a,))


# -- views --------------------------------------------------------------------------------


def gen_reshape(b: Builder):
    a = b.operand()
    shape = b.rv(a).shape
    n = math.prod(shape)
    ndim = b.draw(st.integers(0 if n == 1 else 1, 4))
    if n == 0:
        new = [b.draw(st.sampled_from((2, 0, 1, 3))) for _ in range(max(ndim, 1))]
        new[b.draw(st.integers(0, len(new) - 1))] = 0
    else:
        new = _factorize(b, n, ndim)
        if new and b.draw(st.integers(0, 3)) == 0:
            new[b.draw(st.integers(0, len(new) - 1))] = -1
    return b.add("reshape", (a,), {"shape": tuple(new)})


def _factorize(b: Builder, n: int, ndim: int) -> list:
    dims = []
    for _ in range(max(ndim - 1, 0)):
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        d = b.draw(st.sampled_from(divisors))
        dims.append(d)
        n //= d
    return dims + [n] if ndim else []


def gen_permute(b: Builder):
    a = b.operand(min_ndim=1)
    dims = b.draw(st.permutations(range(b.rv(a).value.ndim)))
    if b.draw(st.booleans()):
        dims = [d - len(dims) if b.draw(st.booleans()) else d for d in dims]
    return b.add("permute", (a,), {"dims": tuple(dims)})


def gen_transpose(b: Builder):
    a = b.operand(min_ndim=1)
    nd = b.rv(a).value.ndim
    if nd >= 2 and b.draw(st.integers(0, 3)) == 0:
        return b.add("mT", (a,))
    d0, d1 = (b.draw(st.integers(-nd, nd - 1)) for _ in range(2))
    return b.add("transpose", (a,), {"d0": d0, "d1": d1})


def gen_expand(b: Builder):
    a = b.operand()
    shape = b.rv(a).shape
    target = [
        b.draw(st.sampled_from((1, 2, 3))) if n == 1 else (n if b.draw(st.booleans()) else -1) for n in shape
    ]
    lead = [b.draw(st.sampled_from((2, 1, 3))) for _ in range(b.draw(st.integers(0, 2)))]
    out = tuple(lead + target)
    if math.prod(n if n != -1 else 1 for n in out) * max(math.prod(shape), 1) > 512 * b.profile.scale:
        return None
    return b.add("expand", (a,), {"shape": out})


def gen_unsqueeze(b: Builder):
    a = b.operand()
    nd = b.rv(a).value.ndim
    return b.add("unsqueeze", (a,), {"dim": b.draw(st.integers(-nd - 1, nd))})


def gen_squeeze(b: Builder):
    a = b.pick(lambda rv: 1 in rv.shape) or b.operand()
    nd = b.rv(a).value.ndim
    dim = None if b.draw(st.booleans()) or nd == 0 else b.draw(st.integers(-nd, nd - 1))
    return b.add("squeeze", (a,), {"dim": dim})


def gen_slice(b: Builder):
    a = b.operand(min_ndim=1)
    shape = b.rv(a).shape
    d = b.draw(st.integers(0, len(shape) - 1))
    n = shape[d]
    bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
    start, stop = b.draw(bound), b.draw(bound)
    step = b.draw(st.sampled_from((1, 2, 3)))
    return b.add("slice", (a,), {"dim": d, "start": start, "stop": stop, "step": step})


def gen_select(b: Builder):
    a = b.pick(lambda rv: rv.value.ndim >= 1 and 0 not in rv.shape[:1]) or b.leaf(b.shape(1), b.dtype())
    shape = b.rv(a).shape
    dims = [d for d, n in enumerate(shape) if n > 0]
    if not dims:
        return None
    d = b.draw(st.sampled_from(dims))
    index = b.draw(st.integers(-shape[d], shape[d] - 1))
    return b.add("select", (a,), {"dim": d - len(shape) if b.draw(st.booleans()) else d, "index": index})


def gen_flip(b: Builder):
    a = b.operand(min_ndim=1)
    nd = b.rv(a).value.ndim
    dims = b.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    return b.add("flip", (a,), {"dims": tuple(dims)})


def gen_clone(b: Builder):
    return b.add("clone", (b.operand(),))


def gen_cat(b: Builder):
    a = b.operand(min_ndim=1)
    rv = b.rv(a)
    shape = rv.shape
    d = b.draw(st.integers(0, len(shape) - 1))
    parts = [a]
    for _ in range(b.draw(st.integers(1, 2))):
        if b.draw(st.integers(0, 9)) == 0:
            parts.append(b.leaf((0,), rv.dtype))  # legacy: 1-d empty tensors are skipped
            continue

        def fits(other, d=d):
            s = other.shape
            return len(s) == len(shape) and all(x == y for k, (x, y) in enumerate(zip(s, shape)) if k != d)

        size = b.draw(st.sampled_from((2, 1, 3, 0)))
        new_shape = shape[:d] + (size,) + shape[d + 1 :]
        dtypes = (rv.dtype,) if b.draw(st.integers(0, 3)) else b.profile.dtypes
        parts.append(
            b.pick(lambda o: fits(o) and o.dtype in dtypes, lambda: b.leaf(new_shape, b.dtype(dtypes)))
        )
    if b.draw(st.booleans()):
        parts.reverse()
    return b.add("cat", (tuple(parts),), {"dim": d - len(shape) if b.draw(st.booleans()) else d})


def gen_index(b: Builder):
    a = b.operand(min_ndim=1)
    shape = b.rv(a).shape
    nd = len(shape)
    forms = ["one", "one", "mask"] + (["pair"] if nd >= 2 else []) + (["apart"] if nd >= 3 else [])
    form = b.draw(st.sampled_from(forms))
    if form == "mask":
        k = b.draw(st.integers(1, nd))
        return b.add("index", (a, b.leaf(shape[:k], "bool")), {"dims": (0,)})
    dims = {"one": (b.draw(st.integers(0, nd - 1)),), "pair": (0, 1), "apart": (0, 2)}[form]
    first = _index_tensor(b, shape[dims[0]], None)
    idx = [first]
    if len(dims) == 2:
        idx.append(_index_tensor(b, shape[dims[1]], b.rv(first).shape))
    shapes = [b.rv(i).shape for i in idx]
    if not _broadcasts(*shapes) if len(shapes) == 2 else False:
        return None
    if math.prod(np.broadcast_shapes(*shapes)) * max(math.prod(shape), 1) > 1024 * b.profile.scale:
        return None
    return b.add("index", (a, *idx), {"dims": dims})


def _index_tensor(b: Builder, n: int, like: tuple | None) -> Ref:
    def fits(rv):
        if rv.dtype not in ("int64", "int32") or (like is not None and not _broadcasts(rv.shape, like)):
            return False
        return rv.value.size == 0 or (n > 0 and -n <= rv.value.min() and rv.value.max() < n)

    def fresh():
        shape = b.partner_shape(like) if like is not None else b.shape(0, 2)
        if n == 0:
            shape = shape + (0,) if not shape or 0 not in shape else shape
        dtype = "int64" if b.draw(st.integers(0, 4)) else "int32"
        return b.leaf(shape, dtype, "index", n)

    return b.pick(fits, fresh)


def gen_stack(b: Builder):
    a = b.operand()
    rv = b.rv(a)
    parts = [a] + [
        b.pick(lambda o: o.shape == rv.shape, lambda: b.leaf(rv.shape, b.dtype()))
        for _ in range(b.draw(st.integers(0, 2)))
    ]
    nd = rv.value.ndim
    return b.add("stack", (tuple(parts),), {"dim": b.draw(st.integers(-nd - 1, nd))})


def gen_split(b: Builder):
    a = b.operand(min_ndim=1)
    shape = b.rv(a).shape
    d = b.draw(st.integers(0, len(shape) - 1))
    n = shape[d]
    if b.draw(st.booleans()):
        size = b.draw(st.integers(1, max(n, 1)))
        pieces = max(1, -(-n // size))
        return b.add("split", (a,), {"dim": d, "size": size, "piece": b.draw(st.integers(0, pieces - 1))})
    start = b.draw(st.integers(-n, n))
    length = b.draw(st.integers(0, n - (start + n if start < 0 else start)))
    return b.add("narrow", (a,), {"dim": d, "start": start, "length": length})


def gen_masked_fill(b: Builder):
    x = b.operand()
    shape = b.rv(x).shape
    mask_shape = shape[b.draw(st.integers(0, len(shape))) :]
    mask_shape = tuple(1 if b.draw(st.booleans()) else n for n in mask_shape)
    mask = b.pick(
        lambda rv: rv.dtype == "bool" and rv.shape == mask_shape, lambda: b.leaf(mask_shape, "bool")
    )
    dt = b.rv(x).dtype
    value = b.draw(st.sampled_from([-1.5, 0.0, 2.0])) if is_float(dt) else (True if dt == "bool" else -2)
    return b.add("masked_fill", (x, mask, value))


# -- reductions -----------------------------------------------------------------------------


def _dims(b: Builder, shape: tuple, ok=lambda d: True, allow_none: bool = True):
    nd = len(shape)
    if allow_none and b.draw(st.integers(0, 3)) == 0:
        return None
    choices = [d for d in range(max(nd, 1)) if ok(d)]
    if not choices:
        return False
    dims = b.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=len(choices), unique=True))
    return tuple(d - max(nd, 1) if b.draw(st.booleans()) else d for d in dims)


def gen_sum(b: Builder):
    name = b.draw(st.sampled_from(["sum", "mean"]))
    a = b.operand(FLOAT if name == "mean" else None)
    dims = _dims(b, b.rv(a).shape)
    if dims is None:
        return b.add(name, (a,), {"dims": None, "keepdim": False})
    return b.add(name, (a,), {"dims": dims, "keepdim": b.draw(st.booleans())})


def _nonempty_dims(b: Builder, a: Ref):
    shape = b.rv(a).shape
    if math.prod(shape) == 0:
        return _dims(b, shape, lambda d: shape[d] > 0, allow_none=False)
    return _dims(b, shape, allow_none=False)


def gen_amax(b: Builder):
    name = b.draw(st.sampled_from(["amax", "amin"]))
    a = b.operand()
    dims = _nonempty_dims(b, a)
    if dims is False:
        return None
    return b.add(name, (a,), {"dims": dims, "keepdim": b.draw(st.booleans())})


def _one_dim(b: Builder, a: Ref):
    shape = b.rv(a).shape
    nd = len(shape)
    dims = [d for d in range(max(nd, 1)) if not shape or shape[d] > 0]
    if not dims:
        return None
    d = b.draw(st.sampled_from(dims))
    return d - max(nd, 1) if b.draw(st.booleans()) else d


def gen_max_dim(b: Builder):
    name = b.draw(st.sampled_from(["max_dim", "min_dim"]))
    a = b.operand()
    d = _one_dim(b, a)
    if d is None:
        return None
    return b.add(name, (a,), {"dim": d, "keepdim": b.draw(st.booleans())})


def gen_argmax(b: Builder):
    name = b.draw(st.sampled_from(["argmax", "argmin"]))
    a = b.operand(NUMERIC)
    d = _one_dim(b, a)
    if d is None:
        return None
    return b.add(name, (a,), {"dim": d, "keepdim": b.draw(st.booleans())})


def gen_max_all(b: Builder):
    a = b.pick(lambda rv: rv.value.size > 0) or b.leaf(b.shape(), b.dtype())
    if b.rv(a).value.size == 0:
        return None
    return b.add(b.draw(st.sampled_from(["max_all", "min_all"])), (a,))


def gen_prod(b: Builder):
    a = b.operand()
    if not np.all(np.isfinite(b.rv(a).value)):
        # Known difference: with inf/NaN inputs llgrad's gradient (prod / x) and PyTorch's
        # (products of the others) differ in which of NaN, inf and 0 they give.
        return None
    shape = b.rv(a).shape
    dim = (
        None
        if b.draw(st.integers(0, 2)) == 0
        else b.draw(st.integers(-max(len(shape), 1), max(len(shape), 1) - 1))
    )
    return b.add("prod", (a,), {"dim": dim, "keepdim": dim is not None and b.draw(st.booleans())})


def gen_var(b: Builder):
    a = b.operand(FLOAT)
    dims = _dims(b, b.rv(a).shape, allow_none=False)
    return b.add(
        "var",
        (a,),
        {"dims": dims, "correction": b.draw(st.sampled_from((1, 0, 2))), "keepdim": b.draw(st.booleans())},
    )


def gen_logsumexp(b: Builder):
    a = b.operand()  # integers and bools too: PyTorch computes them in float
    dims = _dims(b, b.rv(a).shape, allow_none=False)
    return b.add("logsumexp", (a,), {"dims": dims, "keepdim": b.draw(st.booleans())})


def gen_softmax(b: Builder):
    a = b.operand(FLOAT)
    nd = b.rv(a).value.ndim
    d = b.draw(st.integers(-max(nd, 1), max(nd, 1) - 1))
    return b.add(b.draw(st.sampled_from(["softmax", "log_softmax"])), (a,), {"dim": d})


def gen_cumsum(b: Builder):
    a = b.operand()
    nd = b.rv(a).value.ndim
    return b.add("cumsum", (a,), {"dim": b.draw(st.integers(-max(nd, 1), max(nd, 1) - 1))})


def gen_std_norm(b: Builder):
    a = b.operand(FLOAT)
    dims = _dims(b, b.rv(a).shape, allow_none=False)
    keep = b.draw(st.booleans())
    if b.draw(st.booleans()):
        return b.add(
            "std", (a,), {"dims": dims, "correction": b.draw(st.sampled_from((1, 0))), "keepdim": keep}
        )
    return b.add("norm", (a,), {"p": b.draw(st.sampled_from((2, 1))), "dims": dims, "keepdim": keep})


# -- matrix products ---------------------------------------------------------------------------

MATMUL_DTYPES = ("float32", "float64", "int64")


def _matrix(
    b: Builder, ndim: int, dtype: str | None = None, rows: int | None = None, cols: int | None = None
) -> Ref:
    def fits(rv):
        s = rv.shape
        if len(s) != ndim or (rv.dtype != dtype if dtype else rv.dtype not in MATMUL_DTYPES):
            return False
        return (rows is None or s[-2] == rows) and (cols is None or s[-1] == cols)

    def fresh():
        shape = list(b.shape(ndim, ndim))
        if rows is not None:
            shape[-2] = rows
        if cols is not None:
            shape[-1] = cols
        return b.leaf(
            tuple(shape), dtype or b.dtype(tuple(d for d in b.profile.dtypes if d in MATMUL_DTYPES))
        )

    return b.pick(fits, fresh)


def gen_mm(b: Builder):
    a = _matrix(b, 2)
    rv = b.rv(a)
    return b.add("mm", (a, _matrix(b, 2, rv.dtype, rows=rv.shape[1])))


def gen_bmm(b: Builder):
    a = _matrix(b, 3)
    rv = b.rv(a)

    def fits(o):
        return o.dtype == rv.dtype and len(o.shape) == 3 and o.shape[:2] == (rv.shape[0], rv.shape[2])

    other = b.pick(
        fits, lambda: b.leaf((rv.shape[0], rv.shape[2], b.draw(st.sampled_from(b.profile.sizes))), rv.dtype)
    )
    return b.add("bmm", (a, other))


def gen_dot(b: Builder):
    a = b.pick(
        lambda rv: rv.value.ndim == 1 and rv.dtype in MATMUL_DTYPES,
        lambda: b.leaf(b.shape(1, 1), b.dtype(FLOAT)),
    )
    rv = b.rv(a)
    if rv.dtype not in MATMUL_DTYPES:
        return None
    other = b.pick(lambda o: o.shape == rv.shape and o.dtype == rv.dtype, lambda: b.leaf(rv.shape, rv.dtype))
    return b.add(b.draw(st.sampled_from(["dot", "matmul"])), (a, other))


def gen_mv(b: Builder):
    m = _matrix(b, 2)
    rv = b.rv(m)
    v = b.pick(
        lambda o: o.shape == (rv.shape[1],) and o.dtype == rv.dtype, lambda: b.leaf((rv.shape[1],), rv.dtype)
    )
    return b.add(b.draw(st.sampled_from(["mv", "matmul"])), (m, v))


def gen_matmul(b: Builder):
    """a @ b with broadcast batch dims (and 1-d operands on either side)."""
    a = b.pick(
        lambda rv: rv.value.ndim >= 1 and rv.dtype in MATMUL_DTYPES and rv.value.ndim <= 4,
        lambda: b.leaf(b.shape(1, 4), b.dtype(tuple(d for d in b.profile.dtypes if d in MATMUL_DTYPES))),
    )
    rv = b.rv(a)
    if rv.dtype not in MATMUL_DTYPES:
        return None
    k = rv.shape[-1]
    m = b.draw(st.sampled_from(b.profile.sizes))
    if rv.value.ndim == 1:
        batch = tuple(b.draw(st.sampled_from((2, 1, 3))) for _ in range(b.draw(st.integers(0, 2))))
        shape = b.draw(st.sampled_from([(k,), (k, m), batch + (k, m)]))
    elif b.draw(st.integers(0, 3)) == 0:
        shape = (k,)
    else:
        shape = b.partner_shape(rv.shape[:-2]) + (k, m)
    batch_out = np.broadcast_shapes(rv.shape[:-2], shape[:-2])
    if math.prod(batch_out) * k * m > 2048 * b.profile.scale:
        return None
    return b.add("matmul", (a, b.leaf(shape, rv.dtype)))

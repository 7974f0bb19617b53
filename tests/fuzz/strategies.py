"""Hypothesis strategies for random op graphs.

`graphs(profile)` draws a Graph: leaves of random shapes (0-d, size-1 and size-0 dims)
and dtypes, then steps that each pick an op from the profile and operands among the
values so far (or fresh leaves shaped to fit: broadcasting partners, matching inner
dims, valid indices). Generation runs the reference alongside (without error bounds),
so every step knows its operands' shapes, dtypes and values and only writes programs
PyTorch accepts. Shrinking removes steps, simplifies shapes and picks simpler ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from .graph import Graph, Leaf, Ref, Step
from .ops import OPS, evaluate
from .reference import RV, Ctx, is_float, leaf


@dataclass(frozen=True)
class Profile:
    name: str
    ops: dict  # op group -> weight
    dtypes: tuple  # leaf dtypes, most likely first
    max_steps: int = 6
    sizes: tuple = (2, 3, 1, 4, 5, 2, 3, 1)  # dim sizes of fresh leaves
    big: tuple = ()  # whole shapes fresh leaves sometimes take (past the kernels' size thresholds)
    scale: int = 1  # multiplies the element limits (expand, index, matmul results)


ELEMENTWISE = ("binary", "unary", "where", "compare", "clamp", "cast", "scalar", "masked_fill")
VIEWS = ("reshape", "permute", "transpose", "expand", "unsqueeze", "squeeze", "slice", "select", "flip")
REDUCTIONS = (
    "sum",
    "mean",
    "amax",
    "max_dim",
    "argmax",
    "max_all",
    "prod",
    "var",
    "logsumexp",
    "softmax",
    "cumsum",
    "std",
)

PROFILES = {
    "elementwise": Profile(
        "elementwise",
        {**dict.fromkeys(ELEMENTWISE, 3), **dict.fromkeys(VIEWS, 1)},
        ("float32", "float64", "float32", "int64", "bool", "int32"),
    ),
    "views": Profile(
        "views",
        {
            **dict.fromkeys(VIEWS, 3),
            "cat": 2,
            "index": 2,
            "binary": 2,
            "unary": 2,
            "clone": 1,
            "sum": 1,
            "stack": 1,
            "split": 2,
        },
        ("float32", "float64"),
    ),
    "reductions": Profile(
        "reductions",
        {**dict.fromkeys(REDUCTIONS, 3), "binary": 2, "unary": 2, "where": 1, **dict.fromkeys(VIEWS, 1)},
        ("float32", "float64", "float32", "int64"),
    ),
    "matmul": Profile(
        "matmul",
        {
            "mm": 3,
            "bmm": 2,
            "matmul": 4,
            "dot": 1,
            "mv": 1,
            "binary": 2,
            "unary": 2,
            "sum": 1,
            **dict.fromkeys(VIEWS, 1),
        },
        ("float32", "float64"),
    ),
    "indexing": Profile(
        "indexing",
        {
            "index": 4,
            "cat": 3,
            "select": 2,
            "slice": 3,
            "flip": 1,
            "binary": 2,
            "unary": 1,
            "argmax": 1,
            "sum": 1,
        },
        ("float32", "float64", "int64"),
    ),
    "mixed": Profile(
        "mixed",
        {**dict.fromkeys(ELEMENTWISE + VIEWS + REDUCTIONS, 1), "mm": 1, "matmul": 1, "cat": 1, "index": 1},
        ("float32", "int64", "float64", "bool", "int32"),
        max_steps=8,
    ),
}

# In-place ops (x.add_(y), x[k] = v, x[k].add_(y)) among the others: versions, write-back
# through views, CopySlices, and PyTorch's errors when a saved value was overwritten.
PROFILES["inplace"] = Profile(
    "inplace",
    {
        "inplace": 4,
        "setitem": 3,
        "view_add": 2,
        "binary": 2,
        "unary": 2,
        "scalar": 1,
        "sum": 1,
        "where": 1,
        "clone": 1,
        "max_dim": 1,
        "softmax": 1,
        "mm": 1,
        "transpose": 1,
        "slice": 1,
        "reshape": 1,
    },
    ("float32", "float64", "int64"),
    max_steps=7,
)

# Shapes past the thresholds of the paths small graphs never reach: GEMM (m*n*k >= 32768),
# reductions split into 64 partials (>= 65536 elements), programs run on both threads.
PROFILES["large"] = Profile(
    "large",
    {
        "binary": 3,
        "unary": 2,
        "scalar": 1,
        "where": 1,
        "sum": 3,
        "amax": 1,
        "max_dim": 1,
        "max_all": 1,
        "prod": 1,
        "softmax": 1,
        "mm": 3,
        "matmul": 2,
        "bmm": 1,
        "transpose": 1,
        "slice": 1,
        "reshape": 1,
    },
    ("float32", "float64"),
    max_steps=4,
    sizes=(40, 33, 64, 1, 7, 100, 129),
    big=((256, 256), (64, 1024), (65536,), (2, 128, 256), (300, 220), (257, 255), (131072,)),
    scale=1024,
)


class Builder:
    """The graph being drawn, with each value's reference (shape, dtype, elements)."""

    def __init__(self, draw, profile: Profile) -> None:
        self.draw = draw
        self.profile = profile
        self.seed = draw(st.integers(0, 2**32 - 1))
        self.nodes: list = []
        self.refs: list[RV] = []
        self.roots: list[int] = []  # which tensor object each value is (in-place ops alias)

    # -- values ----------------------------------------------------------------------
    def rv(self, ref: Ref) -> RV:
        return self.refs[ref.index]

    def leaf(self, shape: tuple, dtype: str, kind: str = "signed", bound: int = 0) -> Ref:
        rng = np.random.default_rng([self.seed, len(self.nodes)])
        if dtype == "bool":
            data = rng.random(shape) < 0.5
        elif kind == "index":
            data = rng.integers(-bound, bound, size=shape) if bound else np.zeros(shape, np.int64)
        elif dtype in ("int32", "int64") and kind == "wide":  # accumulations that overflow int32
            data = rng.integers(-50000, 50000, size=shape)
        elif dtype in ("int32", "int64"):
            data = rng.integers(0 if kind == "positive" else -3, 4, size=shape)
        elif kind == "positive":
            data = rng.uniform(0.5, 2.0, size=shape)
        elif kind == "special":
            pool = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.5, -2.0, 1e-3])
            data = np.where(
                rng.random(shape) < 0.5, rng.choice(pool, size=shape), rng.uniform(-2, 2, size=shape)
            )
        else:
            data = rng.uniform(-2.0, 2.0, size=shape)
        data = np.asarray(data).astype(dtype)
        grad = is_float(dtype) and self.draw(st.integers(0, 4)) != 0
        self.nodes.append(Leaf(data, grad))
        self.refs.append(leaf(data, track=False))
        self.roots.append(len(self.roots))
        return Ref(len(self.nodes) - 1)

    def add(self, op: str, args: tuple, attrs: dict | None = None) -> Ref:
        step = Step(op, args, attrs or {})
        evaluate(step, self.refs, self.roots, Ctx(track=False))
        self.nodes.append(step)
        return Ref(len(self.nodes) - 1)

    def _resolve(self, a):
        if isinstance(a, Ref):
            return self.refs[a.index]
        if isinstance(a, tuple):
            return tuple(self._resolve(x) for x in a)
        return a

    # -- drawing shapes, dtypes and operands -------------------------------------------
    def shape(self, min_ndim: int = 0, max_ndim: int = 3) -> tuple:
        big = [s for s in self.profile.big if min_ndim <= len(s) <= max_ndim]
        if big and self.draw(st.integers(0, 2)) == 0:
            return self.draw(st.sampled_from(big))
        cap = max(min_ndim, 2) if self.profile.big else max_ndim  # large sizes: at most 2 large dims
        ndim = self.draw(st.integers(min_ndim, min(max_ndim, cap)))
        empty = self.draw(st.integers(0, 11)) == 11
        sizes = self.profile.sizes + (0,) if empty else self.profile.sizes
        lead = (
            tuple(self.draw(st.sampled_from((2, 1, 3))) for _ in range(ndim - 2)) if self.profile.big else ()
        )
        return lead + tuple(self.draw(st.sampled_from(sizes)) for _ in range(ndim - len(lead)))

    def dtype(self, choices: tuple | None = None) -> str:
        return self.draw(st.sampled_from(choices or self.profile.dtypes))

    def pick(self, ok=lambda rv: True, fresh=None) -> Ref | None:
        """An earlier value satisfying `ok` (recent ones first), or `fresh()` as a new one."""
        found = [i for i in range(len(self.refs) - 1, -1, -1) if ok(self.refs[i])]
        if found and (fresh is None or self.draw(st.integers(0, 3)) != 0):
            if self.draw(st.integers(0, 2)) != 0:  # mostly the latest: deep chains of ops
                return Ref(found[0])
            return Ref(found[self.draw(st.integers(0, len(found) - 1))])
        return fresh() if fresh is not None else None

    def operand(self, dtypes: tuple | None = None, min_ndim: int = 0, kind: str = "signed") -> Ref:
        allowed = dtypes or self.profile.dtypes

        def fresh():
            choice = tuple(d for d in self.profile.dtypes if d in allowed) or allowed
            return self.leaf(self.shape(min_ndim), self.dtype(choice), self._kind(kind))

        return self.pick(lambda rv: rv.dtype in allowed and rv.value.ndim >= min_ndim, fresh)

    def _kind(self, kind: str) -> str:
        if kind == "signed" and self.draw(st.integers(0, 19)) == 0:
            return self.draw(st.sampled_from(["special", "wide"]))  # NaN/inf/-0.0 floats; large ints
        return kind

    def partner_shape(self, shape: tuple) -> tuple:
        """A shape that broadcasts with `shape` (fewer dims, size-1 dims, new leading dims)."""
        form = self.draw(st.sampled_from(["same", "ones", "drop", "lead", "scalar"]))
        if form == "same":
            return shape
        if form == "scalar":
            return ()
        if form == "ones":
            return tuple(1 if self.draw(st.booleans()) else n for n in shape)
        if form == "drop":
            return shape[self.draw(st.integers(0, len(shape))) :]
        lead = tuple(self.draw(st.sampled_from((2, 1, 3))) for _ in range(self.draw(st.integers(1, 2))))
        return lead + tuple(1 if self.draw(st.booleans()) else n for n in shape)

    def partner(self, shape: tuple, dtypes: tuple | None = None, kind: str = "signed") -> Ref:
        """A value broadcastable with `shape`: an earlier one, or a fresh leaf."""
        allowed = dtypes or self.profile.dtypes

        def fits(rv):
            return (
                rv.dtype in allowed
                and _broadcasts(rv.shape, shape)
                and math.prod(np.broadcast_shapes(rv.shape, shape)) <= 256 * self.profile.scale
            )

        def fresh():
            return self.leaf(
                self.partner_shape(shape),
                self.dtype(tuple(d for d in self.profile.dtypes if d in allowed) or allowed),
                self._kind(kind),
            )

        return self.pick(fits, fresh)

    def positive(self, ref: Ref) -> Ref:
        """`ref`, or |ref| + 0.5 when it is not safely positive (log, sqrt, pow bases)."""
        v = self.rv(ref).value
        if v.size and is_float(self.rv(ref).dtype) and np.nanmin(v) > 0.1 and np.all(np.isfinite(v)):
            return ref
        if not is_float(self.rv(ref).dtype):
            ref = self.add("float", (ref,))
        return self.add("add", (self.add("abs", (ref,)), 0.5))


def _broadcasts(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


NUMERIC = ("float32", "float64", "int64", "int32")
FLOAT = ("float32", "float64")
SCALARS = (2, 0.5, -1.5, 3, 1e-3, -2)


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
)


def gen_unary(b: Builder):
    name = b.draw(st.sampled_from(UNARY))
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


# -- in-place ops ----------------------------------------------------------------------------------

# Ops whose result may share memory with their first operand in PyTorch (a cast to the same dtype
# returns the tensor itself): an in-place op on either would be seen through the other.
VIEW_LIKE = {
    "reshape",
    "permute",
    "transpose",
    "mT",
    "expand",
    "unsqueeze",
    "squeeze",
    "slice",
    "select",
    "split",
    "narrow",
    "float",
    "double",
    "long",
    "int",
    "bool",
    "view_add_",
}


def _inplace_target(b: Builder, dtypes: tuple) -> Ref | None:
    """A computed value nothing views (so only its own names see an in-place change)."""
    viewed = {n.args[0].index for n in b.nodes if isinstance(n, Step) and n.op in VIEW_LIKE}
    viewed |= {b.roots[i] for i in viewed}
    found = [
        i
        for i in range(len(b.nodes) - 1, -1, -1)
        if isinstance(b.nodes[i], Step)
        and b.nodes[i].op not in VIEW_LIKE
        and not OPS[b.nodes[i].op].inplace
        and i not in viewed
        and b.roots[i] not in viewed
        and b.refs[i].dtype in dtypes
    ]
    if not found:
        return None
    return Ref(found[0] if b.draw(st.integers(0, 2)) else found[b.draw(st.integers(0, len(found) - 1))])


def _into(b: Builder, shape: tuple, dtypes: tuple) -> Ref | float:
    """An operand that broadcasts *to* `shape` (no new dims), or a Python number."""
    if b.draw(st.integers(0, 3)) == 0:
        return b.draw(st.sampled_from([0.5, -1.5, 2] if any(is_float(d) for d in dtypes) else [2, -1, 3]))
    form = b.draw(st.sampled_from(["same", "ones", "drop"]))
    if form == "same":
        want = shape
    elif form == "ones":
        want = tuple(1 if b.draw(st.booleans()) else n for n in shape)
    else:
        want = shape[b.draw(st.integers(0, len(shape))) :]
    return b.pick(lambda rv: rv.shape == want and rv.dtype in dtypes, lambda: b.leaf(want, b.dtype(dtypes)))


def _lower(dtype: str) -> tuple:
    """Operand dtypes whose promotion with `dtype` can be cast back to it."""
    return FLOAT + ("int64", "int32", "bool") if is_float(dtype) else ("int64", "int32", "bool")


def gen_inplace(b: Builder):
    name = b.draw(
        st.sampled_from(
            ["add_", "mul_", "sub_", "div_", "relu_", "exp_", "tanh_", "sigmoid_", "neg_", "abs_", "clamp_"]
        )
    )
    floats_only = name in ("div_", "exp_", "tanh_", "sigmoid_")
    target = _inplace_target(b, FLOAT if floats_only else NUMERIC)
    if target is None:
        return None
    rv = b.rv(target)
    if name in ("relu_", "exp_", "tanh_", "sigmoid_", "neg_", "abs_"):
        return b.add(name, (target,))
    if name == "clamp_":
        return b.add(name, (target,), {"min": b.draw(st.sampled_from([-1, 0])), "max": 1})
    other = _into(b, rv.shape, tuple(d for d in _lower(rv.dtype) if d in b.profile.dtypes + ("bool",)))
    if name == "sub_" and isinstance(other, Ref) and b.rv(other).dtype == "bool":
        return None
    return b.add(name, (target, other))


def _index_spec(b: Builder, shape: tuple) -> dict | None:
    """A slice or an int on some dim (the key of x[key] = v and x[key].add_(y))."""
    if not shape:
        return None
    d = b.draw(st.integers(0, len(shape) - 1))
    n = shape[d]
    if n and b.draw(st.booleans()):
        return {"kind": "int", "dim": d, "index": b.draw(st.integers(-n, n - 1))}
    bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
    return {
        "kind": "slice",
        "dim": d,
        "start": b.draw(bound),
        "stop": b.draw(bound),
        "step": b.draw(st.sampled_from((1, 2))),
    }


def gen_setitem(b: Builder):
    target = _inplace_target(b, NUMERIC)
    if target is None:
        return None
    rv = b.rv(target)
    if rv.value.ndim and b.draw(st.integers(0, 3)) == 0 and rv.shape[0]:
        # x[i] = v with distinct indices (repeated ones make PyTorch's result order-dependent)
        n = rv.shape[0]
        count = b.draw(st.integers(1, n))
        rng = np.random.default_rng([b.seed, len(b.nodes)])
        idx = rng.permutation(n)[:count] - n * (rng.random(count) < 0.5)
        index = b.leaf((count,), "int64", "index", n)
        b.nodes[index.index].data[...] = idx
        b.refs[index.index].value[...] = idx
        spec, key_args = {"kind": "tensor"}, (index,)
        written = (count,) + rv.shape[1:]
    else:
        spec = _index_spec(b, rv.shape)
        if spec is None:
            return None
        written = np.empty(rv.shape)[
            tuple([slice(None)] * spec["dim"])
            + (spec["index"] if spec["kind"] == "int" else slice(spec["start"], spec["stop"], spec["step"]),)
        ].shape
        key_args = ()
    dtypes = (
        (rv.dtype,) if key_args else tuple(d for d in _lower(rv.dtype) if d in b.profile.dtypes + ("bool",))
    )
    value = _into(b, written, dtypes)  # (index_put takes only a tensor of the target's dtype, or a number)
    if isinstance(value, Ref) and b.roots[value.index] == b.roots[target.index]:
        return None  # x[k] = x: overlapping memory, which PyTorch refuses (see gen_view_add)
    return b.add("setitem", (target, value) + key_args, spec)


def gen_view_add(b: Builder):
    target = _inplace_target(b, NUMERIC)
    if target is None:
        return None
    rv = b.rv(target)
    spec = _index_spec(b, rv.shape)
    if spec is None:
        return None
    view_shape = np.empty(rv.shape)[
        tuple([slice(None)] * spec["dim"])
        + (spec["index"] if spec["kind"] == "int" else slice(spec["start"], spec["stop"], spec["step"]),)
    ].shape
    other = _into(b, view_shape, tuple(d for d in _lower(rv.dtype) if d in b.profile.dtypes + ("bool",)))
    if isinstance(other, Ref) and b.roots[other.index] == b.roots[target.index]:
        # x[k].add_(x) overlaps partially: PyTorch refuses it; llgrad's immutable buffers compute
        # the clone-first result (a deliberate difference, not a bug to look for)
        return None
    return b.add("view_add_", (target, other), spec)


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
    a = b.operand(FLOAT)
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


GENERATORS = {
    "binary": gen_binary,
    "scalar": gen_scalar,
    "unary": gen_unary,
    "compare": gen_compare,
    "where": gen_where,
    "clamp": gen_clamp,
    "cast": gen_cast,
    "reshape": gen_reshape,
    "permute": gen_permute,
    "transpose": gen_transpose,
    "expand": gen_expand,
    "unsqueeze": gen_unsqueeze,
    "squeeze": gen_squeeze,
    "slice": gen_slice,
    "select": gen_select,
    "flip": gen_flip,
    "clone": gen_clone,
    "cat": gen_cat,
    "index": gen_index,
    "sum": gen_sum,
    "mean": gen_sum,
    "amax": gen_amax,
    "max_dim": gen_max_dim,
    "argmax": gen_argmax,
    "max_all": gen_max_all,
    "prod": gen_prod,
    "var": gen_var,
    "logsumexp": gen_logsumexp,
    "softmax": gen_softmax,
    "cumsum": gen_cumsum,
    "mm": gen_mm,
    "bmm": gen_bmm,
    "dot": gen_dot,
    "mv": gen_mv,
    "matmul": gen_matmul,
    "stack": gen_stack,
    "split": gen_split,
    "masked_fill": gen_masked_fill,
    "std": gen_std_norm,
    "inplace": gen_inplace,
    "setitem": gen_setitem,
    "view_add": gen_view_add,
}

MAX_ELEMENTS = 512  # per value: keeps kernels small and finite differences cheap


def _sink_dangling(b: Builder) -> None:
    """Add values nothing reads into the last one (as sums), so backward reaches them too."""
    used = {a.index for n in b.nodes if isinstance(n, Step) for a in _refs(n.args)}
    last = len(b.nodes) - 1
    for i, node in enumerate(b.nodes[:-1]):
        if isinstance(node, Step) and i not in used and b.draw(st.integers(0, 2)) != 0:
            last = _add_sum(b, last, i)
    if not is_float(b.refs[last].dtype):  # end on a float value, so there is something to differentiate
        floats = [i for i, rv in enumerate(b.refs) if is_float(rv.dtype)]
        if floats and b.draw(st.integers(0, 3)) != 0:
            _add_sum(b, last, floats[-1])


def _add_sum(b: Builder, last: int, i: int) -> int:
    total = b.add("sum", (Ref(i),), {"dims": None, "keepdim": False})
    if b.refs[last].dtype == "bool" and b.refs[total.index].dtype == "bool":
        return last
    return b.add("add", (Ref(last), total)).index


def _refs(args):
    for a in args:
        if isinstance(a, tuple):
            yield from _refs(a)
        elif isinstance(a, Ref):
            yield a


@st.composite
def graphs(draw, profile: str = "mixed") -> Graph:
    b = Builder(draw, PROFILES[profile])
    groups = sorted(b.profile.ops, key=lambda g: -b.profile.ops[g])
    weighted = [g for g in groups for _ in range(b.profile.ops[g])]
    steps = draw(st.integers(1, b.profile.max_steps))
    for _ in range(steps):
        group = draw(st.sampled_from(weighted))
        GENERATORS[group](b)
        if b.refs and b.refs[-1].value.size > MAX_ELEMENTS * b.profile.scale:
            break
    if not any(isinstance(n, Step) for n in b.nodes):
        gen_unary(b)
    _sink_dangling(b)
    outputs = sorted(
        {len(b.nodes) - 1}
        | {i for i, n in enumerate(b.nodes[:-1]) if isinstance(n, Step) and draw(st.integers(0, 4)) == 0}
    )
    return Graph(b.nodes, outputs, backward_first=draw(st.booleans()), weight_seed=b.seed)

"""Hypothesis strategies for random op graphs.

`graphs(profile)` draws a Graph: leaves of random shapes (0-d, size-1 and size-0 dims)
and dtypes, then steps that each pick an op from the profile and operands among the
values so far (or fresh leaves shaped to fit: broadcasting partners, matching inner
dims, valid indices). Generation runs the reference alongside (without error bounds),
so every step knows its operands' shapes, dtypes and values and only writes programs
PyTorch accepts. Shrinking removes steps, simplifies shapes and picks simpler ops.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .builder import Builder, Profile
from .generators import (
    gen_amax,
    gen_argmax,
    gen_binary,
    gen_bmm,
    gen_cast,
    gen_cat,
    gen_clamp,
    gen_clone,
    gen_compare,
    gen_cumsum,
    gen_dot,
    gen_expand,
    gen_flip,
    gen_index,
    gen_logsumexp,
    gen_masked_fill,
    gen_matmul,
    gen_max_all,
    gen_max_dim,
    gen_mm,
    gen_mv,
    gen_permute,
    gen_prod,
    gen_reshape,
    gen_scalar,
    gen_select,
    gen_slice,
    gen_softmax,
    gen_split,
    gen_squeeze,
    gen_stack,
    gen_std_norm,
    gen_sum,
    gen_transpose,
    gen_unary,
    gen_unsqueeze,
    gen_var,
    gen_where,
)
from .graph import Graph, Ref, Step
from .inplace import gen_inplace, gen_setitem, gen_view_add
from .reference import is_float

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

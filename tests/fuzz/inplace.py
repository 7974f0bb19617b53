"""Generators of in-place steps: x.add_(y) and friends, x[k] = v, x[k].add_(y).

Targets are computed values nothing views, so only their own names see the change; the
reference (ops.evaluate) gives every name of the target the new value, as PyTorch does.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .builder import FLOAT, NUMERIC, Builder
from .graph import Ref, Step
from .ops import OPS
from .reference import is_float

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
        # the clone-first result (a known difference, not a bug to look for)
        return None
    return b.add("view_add_", (target, other), spec)

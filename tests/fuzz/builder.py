"""The graph being drawn: leaves, steps, and each value's reference as generation goes.

Generation runs the reference alongside (without error bounds), so every generator knows
its operands' shapes, dtypes and values and writes only programs PyTorch accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from .graph import Leaf, Ref, Step
from .ops import evaluate
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

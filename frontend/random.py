"""The counter-based random stream that compiled code draws from (dropout masks).

A `Generator` is a (seed, offset) pair, like PyTorch's Philox state on GPUs.
`uniform(shape)` records `rand_uniform(iota + offset, seed)` (see
compiler/ops/random.py) and advances the offset by the number of elements,
so every call gets fresh numbers while the graph stays the same: seed and
offset are run-time scalars, and a training step that draws a new dropout
mask each time is compiled once. `llgrad.manual_seed` reseeds it (and the
NumPy generator behind rand/randn), so runs are reproducible.
"""

from __future__ import annotations

import math

from llgrad.compiler import dtypes

from . import trace_state
from .dispatch import apply
from .tensor import Tensor
from .trace_state import LiveInt

_KEY_RANGE = 2**63  # keys travel as int64 run-time scalars


class Generator:
    """A seed and an offset into the counter stream of that seed."""

    def __init__(self, seed: int = 0) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed) % _KEY_RANGE
        self._offset = 0
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> tuple[int, int]:
        return self._seed, self._offset

    def set_state(self, state: tuple[int, int]) -> None:
        seed, offset = state
        self._seed, self._offset = int(seed) % _KEY_RANGE, int(offset)

    def reserve(self, count: int) -> tuple[int, int]:
        """(key, first counter) for `count` fresh numbers; later calls get later counters."""
        key, offset = self._seed, self._offset
        self._offset += count
        if self._offset >= _KEY_RANGE:  # counters stay int64: move to another key instead
            self._seed, self._offset = (self._seed + 1) % _KEY_RANGE, 0
        return key, offset


default_generator = Generator(0)


def uniform(shape: tuple, dtype: dtypes.DType = dtypes.float32, generator: Generator | None = None) -> Tensor:
    """A lazy tensor of uniform [0, 1) numbers, computed inside the compiled program that uses it."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    gen = generator or default_generator
    key, offset = gen.reserve(n)
    tracer = trace_state.active()
    if tracer is not None:  # a compiled step replays without Python: draw fresh numbers each time
        drawn = [key, offset]

        def reserve() -> None:
            drawn[0], drawn[1] = gen.reserve(n)

        tracer.replay_hooks.append(reserve)
        key, offset = LiveInt(key, lambda: drawn[0]), LiveInt(offset, lambda: drawn[1])
    counter = apply("reshape", apply("iota", shape=(n,), dim=0), shape=shape)
    return apply("rand_uniform", apply("add", counter, offset), key, dtype=dtype)


def manual_seed(seed: int) -> None:
    default_generator.manual_seed(seed)


__all__ = ["Generator", "default_generator", "uniform", "manual_seed"]

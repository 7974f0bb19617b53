"""Buffers: the NumPy arrays that hold realized values, with their raw addresses cached.

A buffer is never written after it is filled (in-place ops build new values),
so every lazy graph that reads it sees the value it was recorded with.

Large buffers a program allocates come from a pool: when a buffer dies and
nothing else refers to its memory, the memory is kept for the next buffer of
the same size. A freshly mapped large array costs ~0.1-0.3 ms per MiB in page
faults on first touch (FACTS.md), which a training step would otherwise pay
for every output and scratch buffer, every step.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

POOL_MIN_BYTES = 1 << 16  # smaller arrays come from malloc cheaply
POOL_MAX_BYTES = 1 << 29  # memory the pool may hold while nobody uses it
POOL_PER_SIZE = 8

_pool: dict[int, list] = {}
_pool_bytes = [0]
_lock = threading.Lock()


class Buffer:
    __slots__ = ("array", "addr", "_raw")

    def __init__(self, array: np.ndarray, raw: np.ndarray | None = None) -> None:
        if not (array.flags.c_contiguous and array.flags.aligned and array.dtype.isnative):
            array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
        self.array = array
        self.addr = array.ctypes.data  # reading it costs microseconds: do it once
        self._raw = raw  # pooled memory this buffer came from

    @classmethod
    def allocate(cls, shape: tuple, dtype: np.dtype) -> Buffer:
        """An uninitialized buffer, from the pool when one of this size is free."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < POOL_MIN_BYTES:
            return cls(np.empty(shape, dtype))
        raw = None
        with _lock:
            free = _pool.get(nbytes)
            if free:
                raw = free.pop()
                _pool_bytes[0] -= nbytes
        if raw is None:
            raw = np.empty(nbytes, np.uint8)
        return cls(raw.view(dtype).reshape(shape), raw)

    def __del__(self) -> None:
        # References: our slot, the typed view's base, getrefcount's argument. More: someone
        # (a NumPy view handed to the user, say) still reads this memory.
        if self._raw is None or sys.getrefcount(self._raw) > 3:
            return
        raw, self._raw, self.array = self._raw, None, None
        nbytes = raw.nbytes
        try:
            with _lock:
                free = _pool.setdefault(nbytes, [])
                if len(free) < POOL_PER_SIZE and _pool_bytes[0] + nbytes <= POOL_MAX_BYTES:
                    free.append(raw)
                    _pool_bytes[0] += nbytes
        except TypeError:  # interpreter shutdown: module globals are gone
            pass

    @property
    def nbytes(self) -> int:
        return self.array.nbytes


def pool_bytes() -> int:
    """Bytes held by the pool for reuse."""
    return _pool_bytes[0]


def clear_pool() -> None:
    with _lock:
        _pool.clear()
        _pool_bytes[0] = 0

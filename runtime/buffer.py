"""Buffers: the memory that holds realized values, with their raw addresses cached.

A buffer is never written after it is filled (in-place ops build new values),
so every lazy graph that reads it sees the value it was recorded with.

Memory a program allocates for its outputs comes from two places. Large
buffers come from a pool: when a buffer dies and nothing else refers to its
memory, the memory is kept for the next buffer of the same size (a freshly
mapped large array costs ~0.1-0.3 ms per MiB in page faults on first touch,
FACTS.md, which a training step would otherwise pay every step). Small ones
share one arena per run: one allocation and one address lookup instead of
one per buffer. The NumPy view of a buffer is made only when someone reads
it; programs pass addresses.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import threading

import numpy as np

POOL_MIN_BYTES = 1 << 16  # smaller buffers go into the run's arena
POOL_MAX_BYTES = 1 << 29  # memory the pool may hold while nobody uses it
POOL_PER_SIZE = 8
ALIGN = 64

_pool: dict[int, list] = {}
_pool_bytes = [0]
_lock = threading.Lock()
os.register_at_fork(after_in_child=_lock._at_fork_reinit)  # a thread that held it is gone


class Buffer:
    __slots__ = ("_array", "addr", "_raw", "_offset", "shape", "dtype", "_pooled")

    def __init__(self, array: np.ndarray) -> None:
        if not (array.flags.c_contiguous and array.flags.aligned and array.dtype.isnative):
            array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
        self._array = array
        self.addr = array.ctypes.data  # reading it costs microseconds: do it once
        self._raw = None
        self._offset = 0
        self.shape, self.dtype = array.shape, array.dtype
        self._pooled = False

    @classmethod
    def _within(cls, raw: np.ndarray, addr: int, offset: int, shape: tuple, dtype: np.dtype,
                pooled: bool) -> Buffer:
        buf = object.__new__(cls)
        buf._array = None
        buf.addr = addr + offset
        buf._raw, buf._offset, buf.shape, buf.dtype, buf._pooled = raw, offset, shape, dtype, pooled
        return buf

    @property
    def array(self) -> np.ndarray:
        a = self._array
        if a is None:
            raw = self._raw
            if isinstance(raw, np.ndarray):
                n = math.prod(self.shape) * self.dtype.itemsize
                a = raw[self._offset:self._offset + n].view(self.dtype).reshape(self.shape)
            else:  # an arena's ctypes memory
                a = np.frombuffer(raw, self.dtype, math.prod(self.shape), self._offset).reshape(self.shape)
            self._array = a
        return a

    @classmethod
    def allocate(cls, shape: tuple, dtype: np.dtype) -> Buffer:
        """An uninitialized buffer, from the pool when one of this size is free."""
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < POOL_MIN_BYTES:
            return cls(np.empty(shape, dtype))
        with _lock:
            free = _pool.get(nbytes)
            raw = free.pop() if free else None
            if raw is not None:
                _pool_bytes[0] -= nbytes
        if raw is None:
            try:
                array = np.empty(nbytes, np.uint8)
            except MemoryError:  # name the tensor, not the raw bytes
                raise MemoryError(f"cannot allocate a tensor of shape {list(shape)} and dtype {dtype}: "
                                  f"{nbytes} bytes") from None
            raw = (array, array.ctypes.data)
        return cls._within(raw[0], raw[1], 0, shape, dtype, True)

    def __del__(self) -> None:
        if not self._pooled:
            return
        # References: our slot, (the typed view's base), getrefcount's argument. More: someone (a NumPy
        # view handed to the user, say) still reads this memory.
        mine = 3 if self._array is not None else 2
        if sys.getrefcount(self._raw) > mine:
            return
        raw, self._raw, self._array = self._raw, None, None
        nbytes = raw.nbytes
        try:
            with _lock:
                free = _pool.setdefault(nbytes, [])
                if len(free) < POOL_PER_SIZE and _pool_bytes[0] + nbytes <= POOL_MAX_BYTES:
                    free.append((raw, self.addr))
                    _pool_bytes[0] += nbytes
        except TypeError:  # interpreter shutdown: module globals are gone
            pass

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class Arena:
    """Room for several small buffers, allocated at once (a program run's small outputs).

    ctypes memory, not a NumPy array: its address costs 0.15 us to read, an array's ~2 us
    (once per realization on the eager path)."""

    __slots__ = ("raw", "addr", "skip")

    def __init__(self, nbytes: int) -> None:
        self.raw = (ctypes.c_char * (nbytes + ALIGN))()
        base = ctypes.addressof(self.raw)
        self.skip = -base % ALIGN
        self.addr = base + self.skip  # 64-byte aligned start

    def buffer(self, offset: int, shape: tuple, dtype: np.dtype) -> Buffer:
        return Buffer._within(self.raw, self.addr - self.skip, self.skip + offset, shape, dtype, False)


def arena_layout(sizes: list[int]) -> tuple[list[int], int]:
    """Offsets of buffers of these byte sizes packed 64-byte aligned, and the total size."""
    offsets, total = [], 0
    for n in sizes:
        offsets.append(total)
        total += -(-max(n, 1) // ALIGN) * ALIGN
    return offsets, total


def pool_bytes() -> int:
    """Bytes held by the pool for reuse."""
    return _pool_bytes[0]


def clear_pool() -> None:
    with _lock:
        _pool.clear()
        _pool_bytes[0] = 0

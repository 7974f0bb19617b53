"""Buffers: the NumPy arrays that hold realized values, with their raw addresses cached.

A buffer is never written after it is filled (in-place ops build new values),
so every lazy graph that reads it sees the value it was recorded with.
"""

from __future__ import annotations

import numpy as np


class Buffer:
    __slots__ = ("array", "addr")

    def __init__(self, array: np.ndarray) -> None:
        if not (array.flags.c_contiguous and array.flags.aligned and array.dtype.isnative):
            array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
        self.array = array
        self.addr = array.ctypes.data  # reading it costs microseconds: do it once

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

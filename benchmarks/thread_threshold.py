"""Measure where splitting a program across threads starts to pay off.

    python benchmarks/thread_threshold.py

For elementwise programs of growing size, times the one-thread entry against
the multithreaded entry run by the worker pool (same process, interleaved,
medians) and prints the ratio. runtime/threads.py PARALLEL_MIN_WORK comes from
the size where two threads are first clearly faster.
"""

from __future__ import annotations

import ctypes
import statistics
import time

import llgrad
import numpy as np
from llgrad.runtime.threads import pool


def main() -> None:
    workers = pool()
    if workers is None:
        print("one core: nothing to measure")
        return
    print(f"{'iterations':>10s} {'1 thread us':>12s} {f'{workers.n} threads us':>12s} {'speedup':>8s}")
    for log in range(10, 22):
        n = 1 << log
        x = llgrad.rand(n)
        y = ((x * 1.5 + 0.5).tanh() * x).exp()
        prog = llgrad.debug.program(y)
        inputs = [x._node.buffer]
        from llgrad.runtime.buffer import Buffer

        out = Buffer.allocate((n,), np.dtype(np.float32))
        table = (ctypes.c_void_p * 2)(inputs[0].addr, out.addr)
        params = np.array([0, 0], np.int64)
        params.view(np.float64)[:] = [1.5, 0.5]
        from llgrad.runtime.program import _ENTRY_MT

        mt = _ENTRY_MT(prog._tracker[prog.name + "_mt"]) if prog.plan.threaded else None
        single, multi = [], []
        for _ in range(200 if n < 1 << 18 else 30):
            t = time.perf_counter()
            prog._fn(table, params.ctypes.data)
            single.append(time.perf_counter() - t)
            t = time.perf_counter()
            workers.run(mt, table, params.ctypes.data)
            multi.append(time.perf_counter() - t)
        s, m = statistics.median(single) * 1e6, statistics.median(multi) * 1e6
        print(f"{n:10d} {s:12.1f} {m:12.1f} {s / m:8.2f}")


if __name__ == "__main__":
    main()

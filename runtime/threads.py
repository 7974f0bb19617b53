"""Running one program on several cores.

Every thread calls the program's multithreaded entry with its own id: kernels
split their outermost parallel loop by thread id and a native barrier sits
between kernels, so a whole step is still one native call per thread. The
worker threads are persistent (starting a thread per run would cost more
than small programs take); ctypes releases the GIL for the native call.
Programs below `PARALLEL_MIN_WORK` loop iterations run on the calling thread
alone: handing work to a worker costs tens of microseconds.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from . import config

# Measured with benchmarks/thread_threshold.py on the 2-core target machine: an elementwise
# program breaks even on two threads at about 64-128K iterations.
PARALLEL_MIN_WORK = 1 << 17


def thread_count() -> int:
    chosen = config.get("LLGRAD_NUM_THREADS")
    if chosen is not None:
        return chosen
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Worker:
    def __init__(self, tid: int) -> None:
        self.tid = tid
        self.job = None
        self.start = threading.Event()
        self.done = threading.Event()
        threading.Thread(target=self._loop, name=f"llgrad-worker-{tid}", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.start.wait()
            self.start.clear()
            fn, args = self.job
            try:
                fn(*args[:2], self.tid, args[2], args[3])
            finally:
                self.done.set()


class _Pool:
    def __init__(self, n: int) -> None:
        self.n = n
        self.workers = [_Worker(t) for t in range(1, n)]
        self.busy = threading.Lock()

    def run(self, fn, bufs, params) -> bool:
        """Run fn on all threads; False (nothing run) if another run holds the pool."""
        if not self.busy.acquire(blocking=False):
            return False
        try:
            barrier = np.zeros(2, np.int64)  # [arrived, release flag]
            args = (bufs, params, self.n, barrier.ctypes.data)
            for w in self.workers:
                w.done.clear()
                w.job = (fn, args)
                w.start.set()
            fn(bufs, params, 0, self.n, args[3])
            for w in self.workers:
                w.done.wait()
            return True
        finally:
            self.busy.release()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def pool() -> _Pool | None:
    """The process's worker pool, or None on one core."""
    global _pool
    if _pool is None:
        n = thread_count()
        if n < 2:
            return None
        with _pool_lock:
            if _pool is None:
                _pool = _Pool(n)
    return _pool

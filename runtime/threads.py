"""Running one program on several cores.

Every thread calls the program's multithreaded entry with its own id: kernels
split their outermost parallel loop by thread id and a native barrier sits
between kernels, so a whole step is still one native call per thread. The
worker threads are persistent (starting a thread per run would cost more
than small programs take); ctypes releases the GIL for the native call.
Programs below `PARALLEL_MIN_WORK` loop iterations run on the calling thread
alone: handing work to a worker costs tens of microseconds.

Interrupts: a Ctrl-C (KeyboardInterrupt, or any exception a signal handler
raises) can arrive at any point of a run. Each run is a `_Job` of its own,
holding its barrier and buffers until every thread has finished it; the
workers are handed the job and thread 0's share runs in one C-level call,
so an interrupt finds either nothing started or every thread's share
started, never the workers waiting at a barrier for a thread 0 that never
comes. A run interrupted while waiting for its workers is abandoned: it
finishes on its own, its buffers stay alive until then, and the pool is
free again only after that (runs meanwhile take the one-thread path).

Fork: the worker threads do not survive a fork. A child process forgets the
parent's pool and starts its own on first use.
"""

from __future__ import annotations

import _thread
import functools
import itertools
import os
import queue
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


class _Job:
    """One run of an entry point on every thread of the pool."""

    def __init__(self, fn, bufs: bytes, params: bytes, n: int, keep, hold: dict) -> None:
        self.fn = fn
        self.hold = hold  # {"lock": the pool's lock} while this job holds the pool
        self.barrier = np.zeros(2, np.int64)  # [arrived, release flag]
        self.args = (bufs, params, n, self.barrier.ctypes.data)
        self.keep = keep  # the buffers behind `bufs`: alive until the last thread is done
        self.started: list = []  # one entry per worker handed the job, then one for thread 0's share
        self.finished = threading.Event()  # every worker's share is done
        self._left = n - 1
        self._lock = threading.Lock()
        self._then = None

    def share(self, tid: int) -> tuple:
        bufs, params, n, barrier = self.args
        return bufs, params, tid, n, barrier

    def worker_done(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self.keep = None  # no thread touches the buffers any more
            self.finished.set()
            with self._lock:
                then, self._then = self._then, None
            if then is not None:
                then()

    def when_finished(self, callback) -> None:
        """Call `callback` once every worker is done: now, or from the last worker."""
        with self._lock:
            if not self.finished.is_set():
                self._then = callback
                return
        callback()


class _Worker:
    def __init__(self, tid: int) -> None:
        self.tid = tid
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._loop, name=f"llgrad-worker-{tid}", daemon=True).start()

    def _loop(self) -> None:
        while True:
            job = self.inbox.get()
            try:
                job.fn(*job.share(self.tid))
            finally:
                job.worker_done()
                job = None  # not kept alive (with its program and buffers) until the next run


_try_acquire = functools.partial(_thread.LockType.acquire, blocking=False)


def _acquire_into(lock, hold: dict) -> None:
    """Try to acquire `lock` without blocking; hold["lock"] = lock exactly when it was acquired.

    One C-level call (see `_in_c`): an interrupt cannot separate the acquiring from the record.
    """
    hold.update(zip(("lock",), itertools.compress((lock,), map(_try_acquire, (lock,)))))


def _release_from(hold: dict) -> None:
    """Release hold["lock"] if it is still there: once, whoever calls (one C-level call)."""
    _in_c([], map(_thread.LockType.release, filter(None, map(hold.pop, ("lock",), (None,)))))


def _in_c(record: list, calls) -> None:
    """Consume `calls`, appending each result to `record`, inside one C-level call.

    Python runs signal handlers (where a Ctrl-C raises KeyboardInterrupt) only between
    bytecodes. `calls` is built from C callables alone (map and starmap over builtin methods
    and ctypes functions), so an interrupt lands before all of it or after all of it, and
    `record` says which.
    """
    record.extend(calls)


class _Pool:
    def __init__(self, n: int) -> None:
        self.n = n
        self.workers = [_Worker(t) for t in range(1, n)]
        self.busy = threading.Lock()

    def run(self, fn, bufs: bytes, params: bytes, keep=None) -> bool:
        """Run fn on all threads; False (nothing run) if another run holds the pool.

        `keep`: what must stay alive while any thread may still touch `bufs`.
        """
        hold: dict = {}
        job = None
        try:
            _acquire_into(self.busy, hold)
            if not hold:
                return False
            job = _Job(fn, bufs, params, self.n, keep, hold)
            inboxes = [w.inbox for w in self.workers]
            _in_c(job.started, itertools.chain(
                map(queue.SimpleQueue.put, inboxes, itertools.repeat(job)),
                itertools.starmap(fn, (job.share(0),))))
            job.finished.wait()
            return True
        finally:
            if job is not None and job.started and not job.finished.is_set():
                # Interrupted while the workers run: they finish on their own; the pool is free after.
                job.when_finished(functools.partial(_release_from, hold))
            else:
                _release_from(hold)


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


def _forget_pool_after_fork() -> None:
    """In a forked child: the parent's worker threads are gone (and a lock may be held)."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)

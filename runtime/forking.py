"""What llgrad does around fork(): locks a vanished thread held must not stay held.

A forked child has only the thread that forked. A lock that another thread held at that
moment stays held in the child forever, and the child hangs on it (multiprocessing's
default start method on Linux, DataLoader workers). Locks that guard LLVM and the program
cache are taken before the fork, so that no other thread is halfway through such work when
the process is copied; every llgrad lock is unlocked in the child.
"""

from __future__ import annotations

import os

from llvmlite.binding import ffi


def unlock_in_child(*locks) -> None:
    """Unlock `locks` in every forked child (whoever held them in the parent)."""

    def reinit() -> None:
        for lock in locks:
            lock._at_fork_reinit()  # (what threading does for its own locks after a fork)

    os.register_at_fork(after_in_child=reinit)


def hold_across_fork(lock) -> None:
    """Take `lock` before a fork (waiting for whoever does work under it), release it after.

    Registered later means taken earlier: register the outermost lock last.
    """
    os.register_at_fork(before=lock.acquire, after_in_parent=lock.release,
                        after_in_child=lock._at_fork_reinit)


# No LLVM call may be in flight in another thread when the process forks: llvmlite's own lock,
# which every call into LLVM takes, is held across the fork (LLVM's state is then whole).
hold_across_fork(ffi.lib._lock._lock)

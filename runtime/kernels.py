"""Kernel objects: each distinct kernel compiled once, shared by every program that calls it.

A program's kernels are compiled apart from its entry point, each as a module of its own
defining one external function named after the kernel's canonical structure
(compiler/kernel_key.py). The 48 layers of an MLP, the 64 steps of an unrolled RNN, the same
softmax in two programs: one compile each. A kernel's object code is kept in memory (the
KERNELS_IN_MEMORY most recently used) and in the disk cache, and each program links the
kernel objects it lists in its plan into its own JIT library, so freeing one program never
touches another's code.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from llgrad.compiler import codegen
from llgrad.compiler.kernel_key import KernelKey

from . import diskcache, forking
from .plan import Plan

KERNELS_IN_MEMORY = 4096  # object code of a few KB each

_objects: OrderedDict = OrderedDict()  # symbol -> object code, least recently used first
_lock = threading.Lock()
forking.unlock_in_child(_lock)
_stats = {"compiled": 0, "from_disk": 0, "reused": 0}


def stats() -> dict:
    """Kernels compiled, loaded from the disk cache, and found in memory (shared) so far."""
    with _lock:
        return dict(_stats)


def object_for(kernel, key: KernelKey) -> bytes:
    """The object code of `kernel` (its function named key.symbol): from memory, the disk
    cache, or compiled now with the full optimization pipeline."""
    with _lock:
        obj = _objects.get(key.symbol)
        if obj is not None:
            _objects.move_to_end(key.symbol)
            _stats["reused"] += 1
            return obj
    disk = diskcache.current()
    text = _disk_key(key.symbol)
    if disk is not None:
        found = disk.get(text)
        if found is not None:
            if _defines(found[1], key.symbol):
                return _remember(key.symbol, found[1], "from_disk")
            disk.discard(text, f"it does not define the kernel {key.symbol}")
    from . import compile_worker
    from .jit import jit

    module = codegen.build_kernel_module(kernel, key)
    module.triple = jit().triple
    obj = compile_worker.compile_object(str(module))
    if not _defines(obj, key.symbol):  # never stored, never linked
        raise RuntimeError(f"llgrad: the kernel {key.symbol} was compiled without its function")
    if disk is not None:
        disk.put(text, Plan(key.symbol, (), (), ()), obj)
    return _remember(key.symbol, obj, "compiled")


def cached(symbol: str) -> bytes | None:
    """A kernel's object code by its symbol (for a program loaded from the disk cache), or None."""
    with _lock:
        obj = _objects.get(symbol)
        if obj is not None:
            _objects.move_to_end(symbol)
            return obj
    disk = diskcache.current()
    if disk is None:
        return None
    text = _disk_key(symbol)
    found = disk.get(text)
    if found is None:
        return None
    if not _defines(found[1], symbol):
        disk.discard(text, f"it does not define the kernel {symbol}")
        return None
    return _remember(symbol, found[1], "from_disk")


def _disk_key(symbol: str) -> str:
    return "llgrad-kernel " + symbol


def _defines(obj: bytes, symbol: str) -> bool:
    """Whether object code names the kernel's function (a kernel object names no other)."""
    return symbol.encode() in obj


def _remember(symbol: str, obj: bytes, how: str) -> bytes:
    with _lock:
        _objects[symbol] = obj
        _objects.move_to_end(symbol)
        _stats[how] += 1
        while len(_objects) > KERNELS_IN_MEMORY:
            _objects.popitem(last=False)
    return obj


def clear() -> None:
    with _lock:
        _objects.clear()

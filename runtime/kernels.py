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


def objects_for(kernels: list, keys: list[KernelKey]) -> dict[str, bytes]:
    """{symbol: object code} of each distinct kernel: from memory, the disk cache, or compiled
    now with the full optimization pipeline (the new ones on both cores)."""
    found: dict[str, bytes] = {}
    missing: dict[str, tuple] = {}
    disk = diskcache.current()
    for kernel, key in zip(kernels, keys):
        symbol = key.symbol
        if symbol in found or symbol in missing:
            continue
        with _lock:
            obj = _objects.get(symbol)
            if obj is not None:
                _objects.move_to_end(symbol)
                _stats["reused"] += 1
        if obj is None and disk is not None:
            obj = _from_disk(disk, symbol)
        if obj is None:
            missing[symbol] = (kernel, key)
        else:
            found[symbol] = obj
    if missing:
        from . import compile_worker
        from .jit import jit

        texts = []
        for kernel, key in missing.values():
            module = codegen.build_kernel_module(kernel, key)
            module.triple = jit().triple
            texts.append(str(module))
        for symbol, obj in zip(missing, compile_worker.compile_objects(texts)):
            if not _defines(obj, symbol):  # never stored, never linked
                raise RuntimeError(f"llgrad: the kernel {symbol} was compiled without its function")
            if disk is not None:
                disk.put(_disk_key(symbol), Plan(symbol, (), (), ()), obj)
            found[symbol] = _remember(symbol, obj, "compiled")
    return found


def _from_disk(disk, symbol: str) -> bytes | None:
    text = _disk_key(symbol)
    got = disk.get(text)
    if got is None:
        return None
    if not _defines(got[1], symbol):
        disk.discard(text, f"it does not define the kernel {symbol}")
        return None
    return _remember(symbol, got[1], "from_disk")


def cached(symbol: str) -> bytes | None:
    """A kernel's object code by its symbol (for a program loaded from the disk cache), or None."""
    with _lock:
        obj = _objects.get(symbol)
        if obj is not None:
            _objects.move_to_end(symbol)
            return obj
    disk = diskcache.current()
    return None if disk is None else _from_disk(disk, symbol)


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

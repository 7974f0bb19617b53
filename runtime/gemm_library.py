"""The GEMM library (micro-kernels and packing, compiler/gemm.py), compiled once per process.

Its object code is kept in memory and in the disk cache like a program's, and linked into
every program whose plan says it calls it (Plan.gemm) (each program's JIT library gets its own copy of
the small object, so programs stay independent: freeing one never touches another).
"""

from __future__ import annotations

import threading

from llgrad.compiler import gemm, gemm_llvm

from . import diskcache, forking
from .plan import Plan

_object: list = [None]
_lock = threading.Lock()
forking.unlock_in_child(_lock)
_KEY = ("llgrad-gemm-library", gemm.KC, gemm.MR)


def object_code() -> bytes:
    if _object[0] is None:
        with _lock:
            if _object[0] is None:
                _object[0] = _load_or_compile()
    return _object[0]


def entry_points() -> list[str]:
    """The functions programs call in the library: what its object code must define."""
    return [f.name for f in gemm_llvm.library_module(define=False).functions]


def _load_or_compile() -> bytes:
    from . import compile_worker
    from .jit import jit

    expected = entry_points()
    disk = diskcache.current()
    text = diskcache.key_text(_KEY) if disk is not None else None
    if text is not None:
        found = disk.get(text)
        if found is not None:
            missing = jit().undefined(found[1], expected)
            if not missing:
                return found[1]
            disk.discard(text, f"it is not the GEMM library: it does not define {missing[0]}")
    module = gemm_llvm.library_module()
    module.triple = jit().triple
    obj = compile_worker.compile_object(str(module))
    missing = jit().undefined(obj, expected)
    if missing:  # never stored, never linked into a program
        raise RuntimeError(f"llgrad: the GEMM library was compiled without {missing[0]}")
    if text is not None:
        disk.put(text, Plan("llgrad_gemm_library", (), (), ()), obj)
    return obj

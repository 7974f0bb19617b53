"""A compiled program: one native entry point that runs all kernels of a graph.

A program is its object code, linked into the process's LLJIT, plus its plan
(buffer table, outputs, scalar kinds). It comes from `build` (schedule ->
LLVM -> object code) or `load` (plan and object code from the disk cache).
It holds no graph nodes, and its native code is freed with it (its resource
tracker), so dropping a program from the cache releases everything.

`run` allocates the output and scratch buffers, passes every buffer address
and run-time scalar in two arrays, and calls the entry point once (ctypes
releases the GIL for the call).
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import struct
import time

import numpy as np
from llgrad.compiler import codegen
from llgrad.compiler.kernel_key import kernel_key
from llgrad.compiler.schedule import Schedule

from . import gemm_library, kernels
from .buffer import POOL_MIN_BYTES, Arena, Buffer, arena_layout
from .compile_worker import compile_object
from .jit import jit
from .plan import Plan
from .threads import PARALLEL_MIN_WORK, pool

_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
# (buffers, params, thread id, thread count, barrier state)
_ENTRY_MT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                             ctypes.c_void_p)


class Program:
    """origin: "compiled" (by LLVM in this process) or "disk" (loaded from the disk cache)."""

    def __init__(self, plan: Plan, object_code: bytes, *, schedule: Schedule | None = None,
                 llvm_ir: str | None = None, compile_seconds: float = 0.0,
                 origin: str = "compiled", kernel_objects: dict | None = None) -> None:
        start = time.perf_counter()
        self.name = plan.symbol
        self.plan = plan
        self.object_code = object_code
        self.origin = origin
        self.llvm_ir = llvm_ir  # None when loaded from disk
        self.compile_seconds = compile_seconds
        # The loop IR when compiled here; from disk, the buffer table and kernel names only.
        self.schedule = schedule if schedule is not None else plan.schedule()
        self.stages: dict = {}  # text a backend adds for dumps (the MLIR backend's module)
        libraries = _libraries(plan, kernel_objects or {})
        if plan.threaded:
            addrs, self._tracker = jit().load_many(object_code, [plan.symbol, plan.symbol + "_mt"], libraries)
            self._fn = _ENTRY(addrs[plan.symbol])
            self._fn_mt = _ENTRY_MT(addrs[plan.symbol + "_mt"]) if plan.work >= PARALLEL_MIN_WORK else None
        else:
            addrs, self._tracker = jit().load_many(object_code, [plan.symbol], libraries)
            self._fn, self._fn_mt = _ENTRY(addrs[plan.symbol]), None
        self._n_bufs = len(plan.bufs)
        fresh = [(b.slot, b.shape, np.dtype(b.dtype)) for b in plan.bufs if b.role != "in"]
        small = [f for f in fresh if math.prod(f[1]) * f[2].itemsize < POOL_MIN_BYTES]
        offsets, self._arena_bytes = arena_layout([math.prod(s) * d.itemsize for _, s, d in small])
        self._small = [(slot, off, shape, dtype) for (slot, shape, dtype), off in zip(small, offsets)]
        self._large = [f for f in fresh if f not in small]
        self._outputs = list(plan.outputs)
        self._param_kinds = [float if f else int for f in plan.param_floats]
        self._table = struct.Struct(f"<{self._n_bufs}Q")
        self._params = struct.Struct("<" + "".join("d" if f else "q" for f in plan.param_floats))
        self.load_seconds = time.perf_counter() - start

    @property
    def kernels(self) -> list:
        return self.schedule.kernels

    def optimized_module(self):
        """The optimized LLVM module (re-built and re-optimized on demand: debugging only)."""
        if self.llvm_ir is not None:  # (a program of the MLIR backend: one module)
            return jit().optimize(self.llvm_ir)
        if not all(k.body for k in self.schedule.kernels):
            raise ValueError(f"{self.name} was loaded from the disk cache: its loop IR is not kept; "
                             "run with LLGRAD_CACHE=0 to see it")
        return program_ir(self.schedule, self.name, optimized=True)

    def assembly(self) -> str:
        return jit().emit_assembly(self.optimized_module())

    def kernel_text(self) -> str:
        """The kernels as loop-level MLIR, printed now (compiling prints nothing)."""
        from llgrad.compiler import mlir_loops

        return mlir_loops.format_program(self.schedule.kernels, self.schedule.bufs, self.name)

    def run(self, inputs: list[Buffer], params: list) -> list[Buffer]:
        """Run on input buffers (in slot order) and scalars; return the output buffers."""
        table: list = [None] * self._n_bufs
        table[:len(inputs)] = inputs
        if self._small:
            arena = Arena(self._arena_bytes)
            for slot, offset, shape, dtype in self._small:
                table[slot] = arena.buffer(offset, shape, dtype)
        for slot, shape, dtype in self._large:
            table[slot] = Buffer.allocate(shape, dtype)
        # Both tables travel as packed bytes: a struct.pack costs far less than a ctypes array.
        addrs = self._table.pack(*[b.addr for b in table])
        values = self._params.pack(*[f(v) for f, v in zip(self._param_kinds, params)])
        workers = pool() if self._fn_mt is not None else None
        # An interrupted run's workers may still be writing: the job keeps the buffers and this
        # program's code alive until they are done.
        if workers is None or not workers.run(self._fn_mt, addrs, values, keep=(self, table)):
            self._fn(addrs, values)
        return [table[slot] if slot >= 0 else None for slot in self._outputs]


def _libraries(plan: Plan, kernel_objects: dict) -> list[bytes]:
    """The object code the program's entry calls: its kernels, and the GEMM library."""
    found = []
    for symbol in plan.kernel_objects:
        obj = kernel_objects.get(symbol) or kernels.cached(symbol)
        if obj is None:  # (a disk-cached program whose kernel left the cache: compiled again)
            raise RuntimeError(f"llgrad: the kernel {symbol} of {plan.symbol} is not in the kernel cache")
        found.append(obj)
    if plan.gemm:
        found.append(gemm_library.object_code())
    return found


def program_ir(schedule: Schedule, name: str, optimized: bool = False):
    """The LLVM IR of a program as it is compiled (its entry module, and each distinct kernel's
    module, each optimized on its own when `optimized`), linked into one module for reading."""
    import llvmlite.binding as llvm

    keys = [kernel_key(k) for k in schedule.kernels]
    texts = {name: codegen.build_entry_module(schedule.kernels, keys, name)}
    for k, key in zip(schedule.kernels, keys):
        if key.symbol not in texts:
            texts[key.symbol] = codegen.build_kernel_module(k, key)
    modules = []
    for i, module in enumerate(texts.values()):
        module.triple = jit().triple
        optimize = optimized and i > 0  # kernels are optimized; the entry, glue, is not
        modules.append(jit().optimize(str(module)) if optimize else llvm.parse_assembly(str(module)))
    whole = modules[0]
    for m in modules[1:]:
        whole.link_in(m)
    return whole


def build(schedule: Schedule, name: str) -> Program:
    """Lower a schedule to LLVM and JIT it: each distinct kernel compiled once (kernels.py), the
    entry point that calls them compiled for this program."""
    start = time.perf_counter()
    keys = [kernel_key(k) for k in schedule.kernels]
    objects = kernels.objects_for(schedule.kernels, keys)
    module = codegen.build_entry_module(schedule.kernels, keys, name)
    module.triple = jit().triple
    text = str(module)
    obj = compile_object(text, optimize=False)  # glue: the optimizer would only cost (3 s at 250 calls)
    seconds = time.perf_counter() - start
    plan = Plan.from_schedule(schedule, name, tuple(objects), any(key.uses_gemm for key in keys))
    # The graph's nodes are dropped: a cached program must not keep the user's tensors alive.
    kept = dataclasses.replace(schedule, inputs=[], params=[])
    return Program(plan, obj, schedule=kept, llvm_ir=None, compile_seconds=seconds, kernel_objects=objects)


def load(plan: Plan, object_code: bytes) -> Program:
    """A program from the disk cache: link its object code, no compiling."""
    return Program(plan, object_code, origin="disk")

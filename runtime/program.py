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
from llgrad.compiler.schedule import Schedule

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
                 origin: str = "compiled") -> None:
        start = time.perf_counter()
        self.name = plan.symbol
        self.plan = plan
        self.object_code = object_code
        self.origin = origin
        self.llvm_ir = llvm_ir  # None when loaded from disk
        self.compile_seconds = compile_seconds
        # The loop IR when compiled here; from disk, the buffer table and kernel names only.
        self.schedule = schedule if schedule is not None else plan.schedule()
        self.stages = {"kernels": plan.kernel_text}  # text of each compiler stage, for dumps
        if plan.threaded:
            addrs, self._tracker = jit().load_many(object_code, [plan.symbol, plan.symbol + "_mt"])
            self._fn = _ENTRY(addrs[plan.symbol])
            self._fn_mt = _ENTRY_MT(addrs[plan.symbol + "_mt"]) if plan.work >= PARALLEL_MIN_WORK else None
        else:
            addr, self._tracker = jit().load(object_code, plan.symbol)
            self._fn, self._fn_mt = _ENTRY(addr), None
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
        """The optimized LLVM module (re-optimized from `llvm_ir` on demand: debugging only)."""
        if self.llvm_ir is None:
            raise ValueError(f"{self.name} was loaded from the disk cache: its LLVM IR is not kept; "
                             "run with LLGRAD_CACHE=0 to see it")
        return jit().optimize(self.llvm_ir)

    def assembly(self) -> str:
        return jit().emit_assembly(self.optimized_module())

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


def build(schedule: Schedule, name: str) -> Program:
    """Lower a schedule to LLVM, optimize, and JIT it."""
    start = time.perf_counter()
    module = codegen.build_module(schedule.kernels, len(schedule.bufs), name)
    module.triple = jit().triple
    text = str(module)
    obj = compile_object(text)  # here, or in a helper process once this one compiled many
    seconds = time.perf_counter() - start
    plan = Plan.from_schedule(schedule, name)
    # The graph's nodes are dropped: a cached program must not keep the user's tensors alive.
    kept = dataclasses.replace(schedule, inputs=[], params=[])
    return Program(plan, obj, schedule=kept, llvm_ir=text, compile_seconds=seconds)


def load(plan: Plan, object_code: bytes) -> Program:
    """A program from the disk cache: link its object code, no compiling."""
    return Program(plan, object_code, origin="disk")

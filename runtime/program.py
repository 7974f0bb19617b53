"""A compiled program: one native entry point that runs all kernels of a graph.

`run` allocates the output and scratch buffers, passes every buffer address
and run-time scalar in two arrays, and calls the entry point once (ctypes
releases the GIL for the call).
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field

import numpy as np
from llgrad.compiler import codegen, loopir
from llgrad.compiler.schedule import Schedule

from .buffer import Buffer
from .jit import jit

_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


@dataclass(eq=False)
class Program:
    name: str
    schedule: Schedule
    llvm_ir: str
    object_code: bytes
    compile_seconds: float
    stages: dict = field(default_factory=dict)  # text of each compiler stage, for dumps

    def __post_init__(self) -> None:
        addr, self._tracker = jit().load(self.object_code, self.name)
        self._fn = _ENTRY(addr)
        s = self.schedule
        self._n_in = len(s.inputs)
        self._fresh = [(b.slot, b.shape, b.dtype.np) for b in s.bufs if b.role != "in"]
        self._n_bufs = len(s.bufs)
        self._outputs = [b.slot for b in s.outputs]
        self._param_kinds = [p.dtype.is_floating_point for p in s.params]

    @property
    def kernels(self) -> list:
        return self.schedule.kernels

    def run(self, inputs: list[Buffer], params: list) -> list[Buffer]:
        """Run on input buffers (in slot order) and scalars; return the output buffers."""
        table: list = [None] * self._n_bufs
        addrs = (ctypes.c_void_p * max(self._n_bufs, 1))()
        for i, buf in enumerate(inputs):
            table[i] = buf
            addrs[i] = buf.addr
        for slot, shape, dtype in self._fresh:
            buf = Buffer(np.empty(shape, dtype))
            table[slot] = buf
            addrs[slot] = buf.addr
        packed = _pack(params, self._param_kinds)
        self._fn(addrs, packed.ctypes.data if packed is not None else None)
        return [table[slot] for slot in self._outputs]


def _pack(values: list, floats: list) -> np.ndarray | None:
    if not values:
        return None
    out = np.empty(len(values), np.int64)
    as_float = out.view(np.float64)
    for i, (v, is_float) in enumerate(zip(values, floats)):
        if is_float:
            as_float[i] = v
        else:
            out[i] = int(v)
    return out


def build(schedule: Schedule, name: str) -> Program:
    """Lower a schedule to LLVM, optimize, and JIT it."""
    start = time.perf_counter()
    module = codegen.build_module(schedule.kernels, len(schedule.bufs), name)
    module.triple = jit().triple
    text = str(module)
    engine = jit()
    optimized = engine.optimize(text)
    obj = engine.emit_object(optimized)
    seconds = time.perf_counter() - start
    program = Program(name, schedule, text, obj, seconds)
    program.stages["kernels"] = "\n\n".join(loopir.format_kernel(k) for k in schedule.kernels)
    program.stages["_optimized_module"] = optimized
    return program

"""record: a 20-op elementwise chain on a 4-element tensor, forward + backward: the per-op cost of
eager recording (each step records 21 ops and a backward pass, then runs one cached program)."""

from __future__ import annotations

import llgrad
import numpy as np

from ..core import Side, Workload
from .common import F32, torch_maybe_compiled, torch_note

LENGTH = 20


def chain(x):
    a = x
    for i in range(LENGTH):
        a = a * 1.01 if i % 2 else a + 0.5
    return a.sum()


class Record(Workload):
    name = "record"
    summary = "20-op elementwise chain (x + 0.5, x * 1.01, ...) on 4 elements, sum, backward: latency"
    tolerance = 1e-6
    reps_scale = 50

    def numpy(self) -> Side:
        x = np.linspace(-1, 1, 4).astype(F32)

        def step():
            a = x
            for i in range(LENGTH):
                a = a * F32(1.01) if i % 2 else a + F32(0.5)
            return a.sum(), np.full_like(x, F32(1.01) ** (LENGTH // 2))

        return Side(step, note="gradient by hand")

    def llgrad(self) -> Side:
        x = llgrad.tensor(np.linspace(-1, 1, 4).astype(F32), requires_grad=True)

        def step():
            x.grad = None
            out = chain(x)
            out.backward()
            return out, x.grad

        return Side(step)

    def torch(self, torch, compiled: bool) -> Side:
        x = torch.tensor(np.linspace(-1, 1, 4).astype(F32), requires_grad=True)
        forward = torch_maybe_compiled(torch, chain, compiled)

        def step():
            x.grad = None
            out = forward(x)
            out.backward()
            return out, x.grad

        return Side(step, note=torch_note(compiled))

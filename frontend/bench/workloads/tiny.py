"""tiny: the autograd tutorial's graph on 2x2, forward + backward: per-step latency on a cache hit."""

from __future__ import annotations

import llgrad
import numpy as np

from ..core import Side, Workload
from .common import F32, torch_maybe_compiled, torch_note


def tutorial(x):
    y = x + 2
    return (y * y * 3).mean()


class Tiny(Workload):
    name = "tiny"
    summary = "tutorial graph (x+2)*(x+2)*3, mean, backward on 2x2: per-step latency"
    tolerance = 1e-6
    reps_scale = 50  # microsecond steps: many more repetitions

    def numpy(self) -> Side:
        x = np.ones((2, 2), F32)

        def step():
            y = x + F32(2)
            return (y * y * F32(3)).mean(), y * F32(6 / y.size)

        return Side(step, note="gradient by hand")

    def llgrad(self) -> Side:
        x = llgrad.ones(2, 2, requires_grad=True)

        def step():
            x.grad = None
            out = tutorial(x)
            out.backward()
            return out, x.grad

        return Side(step)

    def torch(self, torch, compiled: bool) -> Side:
        x = torch.ones(2, 2, requires_grad=True)
        forward = torch_maybe_compiled(torch, tutorial, compiled)

        def step():
            x.grad = None
            out = forward(x)
            out.backward()
            return out, x.grad

        return Side(step, note=torch_note(compiled))

    def jax(self, jax) -> Side:
        loss_and_grad = jax.jit(jax.value_and_grad(tutorial))
        x = jax.numpy.ones((2, 2), jax.numpy.float32)
        return Side(lambda: jax.block_until_ready(loss_and_grad(x)))

"""matmul: C = A @ B for 1024x1024 float32, forward and backward with a given output gradient."""

from __future__ import annotations

import llgrad

from ..core import Side, Workload
from .common import F32, rng, torch_note


class Matmul(Workload):
    name = "matmul"
    summary = "{n}x{n} @ {n}x{n} float32, forward+backward (C, dA, dB)"
    tolerance = 1e-4

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.n = 128 if quick else 1024
        gen = rng(4)
        self.a, self.b, self.grad = (gen.standard_normal((self.n, self.n)).astype(F32) for _ in range(3))

    def flops(self) -> float:
        return 3 * 2 * self.n**3

    def numpy(self) -> Side:
        a, b, g = self.a, self.b, self.grad
        return Side(lambda: (a @ b, g @ b.T, a.T @ g), note="BLAS: C, G @ B.T, A.T @ G")

    def llgrad(self) -> Side:
        a = llgrad.tensor(self.a, requires_grad=True)
        b = llgrad.tensor(self.b, requires_grad=True)
        g = llgrad.tensor(self.grad)

        def step():
            a.grad = b.grad = None
            c = a @ b
            c.backward(g)
            return c, a.grad, b.grad

        return Side(step)

    def torch(self, torch, compiled: bool) -> Side:
        a = torch.tensor(self.a, requires_grad=True)
        b = torch.tensor(self.b, requires_grad=True)
        g = torch.tensor(self.grad)
        forward = torch.compile(torch.matmul, dynamic=False) if compiled else torch.matmul

        def step():
            a.grad = b.grad = None
            c = forward(a, b)
            c.backward(g)
            return c, a.grad, b.grad

        return Side(step, note=torch_note(compiled))

    def jax(self, jax) -> Side:
        jnp = jax.numpy

        @jax.jit
        def forward_backward(a, b, g):
            c, vjp = jax.vjp(jnp.matmul, a, b)
            return (c, *vjp(g))

        a, b, g = (jnp.asarray(v) for v in (self.a, self.b, self.grad))
        return Side(lambda: jax.block_until_ready(forward_backward(a, b, g)))

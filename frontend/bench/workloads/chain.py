"""chain: a 10-op elementwise chain with exp, tanh and sigmoid, summed, forward + backward."""

from __future__ import annotations

import llgrad
import numpy as np

from .. import native
from ..core import Side, Workload
from .common import F32, rng, torch_maybe_compiled, torch_note


def chain_forward(exp, tanh, sigmoid, x):
    """The chain, written once for every library: 10 elementwise ops (x*0.5, +0.1, exp, *x, tanh,
    *2, -x, sigmoid, c*b, x*0.1) and the final add."""
    a = exp(x * 0.5 + 0.1)
    b = tanh(a * x)
    c = sigmoid(b * 2.0 - x)
    return c * b + x * 0.1


class Chain(Workload):
    name = "chain"
    summary = "10-op exp/tanh/sigmoid chain on {n:,} float32, .sum(), forward+backward"
    tolerance = 2e-4  # llgrad's and the native kernel's polynomial/vector exp and tanh

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.n = 1 << 16 if quick else 1 << 22
        self.data = rng(1).uniform(-1, 1, self.n).astype(F32)

    def bytes_moved(self) -> int:
        return 2 * self.n * 4  # read x, write its gradient

    def numpy(self) -> Side:
        x = self.data

        def step():
            # the forward, then its gradient by hand (see native.CHAIN_C for the same algebra)
            a = np.exp(x * F32(0.5) + F32(0.1))
            b = np.tanh(a * x)
            c = F32(1) / (F32(1) + np.exp(x - b * F32(2)))
            loss = (c * b + x * F32(0.1)).sum()
            gv = b * c * (F32(1) - c)
            gu = (c + F32(2) * gv) * (F32(1) - b * b)
            grad = F32(0.1) - gv + gu * a * (F32(1) + F32(0.5) * x)
            return loss, grad

        return Side(step, note="forward, then the gradient written out by hand")

    def llgrad(self) -> Side:
        x = llgrad.tensor(self.data, requires_grad=True)

        def step():
            x.grad = None
            out = chain_forward(llgrad.exp, llgrad.tanh, llgrad.sigmoid, x).sum()
            out.backward()
            return out, x.grad

        return Side(step)

    def torch(self, torch, compiled: bool) -> Side:
        x = torch.tensor(self.data, requires_grad=True)
        forward = torch_maybe_compiled(
            torch, lambda t: chain_forward(torch.exp, torch.tanh, torch.sigmoid, t).sum(), compiled)

        def step():
            x.grad = None
            out = forward(x)
            out.backward()
            return out, x.grad

        return Side(step, note=torch_note(compiled))

    def jax(self, jax) -> Side:
        jnp = jax.numpy
        loss_and_grad = jax.jit(jax.value_and_grad(
            lambda t: chain_forward(jnp.exp, jnp.tanh, jax.nn.sigmoid, t).sum()))
        x = jnp.asarray(self.data)

        def step():
            return jax.block_until_ready(loss_and_grad(x))

        return Side(step)

    def native(self) -> Side | str:
        kernel = native.build_chain()
        if isinstance(kernel, str):
            return kernel
        x = self.data
        grad = np.empty_like(x)
        x_addr, grad_addr = native.address(x), native.address(grad)  # cached: .ctypes.data costs us

        def step():
            return F32(kernel(x_addr, grad_addr, self.n)), grad

        return Side(step, note=f"hand-fused C, gcc {kernel.flags}, 2 threads via ctypes")

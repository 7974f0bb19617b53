"""layernorm: (8192, 1024) layer normalization with scale and shift, forward + backward."""

from __future__ import annotations

import llgrad
import numpy as np

from ..core import Side, Workload
from .common import F32, llgrad_functional, rng, torch_note

EPS = 1e-5


def layer_norm_composite(x, weight, bias):
    """Layer norm over the last dim from ops llgrad has today: mean, biased variance, sqrt."""
    centered = x - x.mean(-1, keepdim=True)
    variance = (centered * centered).mean(-1, keepdim=True)
    return centered / (variance + EPS).sqrt() * weight + bias


class LayerNorm(Workload):
    name = "layernorm"
    summary = "layer norm with scale and shift, ({rows}, {cols}) float32, forward+backward"
    tolerance = 2e-4

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.rows, self.cols = (256, 128) if quick else (8192, 1024)
        gen = rng(5)
        self.x = (gen.standard_normal((self.rows, self.cols)) * 2 + 0.5).astype(F32)
        self.weight = gen.uniform(0.5, 1.5, self.cols).astype(F32)
        self.bias = gen.uniform(-0.5, 0.5, self.cols).astype(F32)
        self.grad = gen.standard_normal((self.rows, self.cols)).astype(F32)

    def bytes_moved(self) -> int:
        return 4 * self.x.nbytes  # read x and the output gradient, write y and dx

    def numpy(self) -> Side:
        x, w, b, gy = self.x, self.weight, self.bias, self.grad

        def step():
            mean = x.mean(1, keepdims=True)
            rstd = F32(1) / np.sqrt(x.var(1, keepdims=True) + F32(EPS))
            xhat = (x - mean) * rstd
            gxhat = gy * w
            gx = rstd * (gxhat - gxhat.mean(1, keepdims=True) - xhat * (gxhat * xhat).mean(1, keepdims=True))
            return xhat * w + b, gx, (gy * xhat).sum(0), gy.sum(0)

        return Side(step, note="gradient by hand")

    def llgrad(self) -> Side:
        x = llgrad.tensor(self.x, requires_grad=True)
        w = llgrad.tensor(self.weight, requires_grad=True)
        b = llgrad.tensor(self.bias, requires_grad=True)
        gy = llgrad.tensor(self.grad)
        layer_norm = llgrad_functional("layer_norm")
        if layer_norm is not None:
            forward = lambda: layer_norm(x, (self.cols,), w, b, EPS)
        else:
            forward = lambda: layer_norm_composite(x, w, b)

        def step():
            x.grad = w.grad = b.grad = None
            y = forward()
            y.backward(gy)
            return y, x.grad, w.grad, b.grad

        note = "llgrad.nn.functional.layer_norm" if layer_norm else "composite: mean, var, sqrt"
        return Side(step, note=note)

    def torch(self, torch, compiled: bool) -> Side:
        x = torch.tensor(self.x, requires_grad=True)
        w = torch.tensor(self.weight, requires_grad=True)
        b = torch.tensor(self.bias, requires_grad=True)
        gy = torch.tensor(self.grad)
        layer_norm = torch.nn.functional.layer_norm
        layer_norm = torch.compile(layer_norm, dynamic=False) if compiled else layer_norm

        def step():
            x.grad = w.grad = b.grad = None
            y = layer_norm(x, (self.cols,), w, b, EPS)
            y.backward(gy)
            return y, x.grad, w.grad, b.grad

        return Side(step, note=torch_note(compiled) or "F.layer_norm")

    def jax(self, jax) -> Side:
        jnp = jax.numpy

        def layer_norm(x, w, b):
            mean = x.mean(-1, keepdims=True)
            return (x - mean) * jax.lax.rsqrt(x.var(-1, keepdims=True) + EPS) * w + b

        @jax.jit
        def forward_backward(x, w, b, gy):
            y, vjp = jax.vjp(layer_norm, x, w, b)
            return (y, *vjp(gy))

        args = [jnp.asarray(v) for v in (self.x, self.weight, self.bias, self.grad)]
        return Side(lambda: jax.block_until_ready(forward_backward(*args)))

"""train-rebind: a training loop that re-binds its weights to detached updates every step, as
tutorials write it (w = (w - lr * w.grad).detach().requires_grad_()): 784-256-10 ReLU MLP at
batch 256, log-sum-exp cross-entropy written out, SGD by hand. Each side starts from the same
weights and carries its own state from step to step; the first step is checked."""

from __future__ import annotations

import llgrad
import numpy as np

from ..core import Side, Workload
from .common import F32, one_hot, rng, torch_note

LEARNING_RATE = 0.1


def loss_of(xb, yb, a, b, batch: int):
    logits = (xb @ a).relu() @ b
    m = logits.max(dim=1, keepdim=True)[0]
    lse = (logits - m).exp().sum(dim=1, keepdim=True).log() + m
    return ((lse - logits) * yb).sum() / batch


class TrainRebind(Workload):
    name = "train-rebind"
    summary = "re-bound training loop, {layers} ReLU MLP, batch {batch}, weights re-bound to detached updates"
    tolerance = 2e-4

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        dims = (784, 32, 10) if quick else (784, 256, 10)
        self.batch = 16 if quick else 256
        self.layers = "-".join(map(str, dims))
        gen = rng(5)
        self.a = (gen.standard_normal(dims[:2]) / np.sqrt(dims[0])).astype(F32)
        self.b = (gen.standard_normal(dims[1:]) / np.sqrt(dims[1])).astype(F32)
        self.x = gen.standard_normal((self.batch, dims[0])).astype(F32)
        self.y = one_hot(gen.integers(0, dims[2], self.batch), dims[2])

    def flops(self) -> float:
        n, (i, h), o = self.batch, self.a.shape, self.b.shape[1]
        return 2 * n * (2 * i * h + 3 * h * o)  # forward, and the two gradients of each layer but x's

    def numpy(self) -> Side:
        state = [self.a.copy(), self.b.copy()]
        x, y, n = self.x, self.y, self.batch

        def step():
            a, b = state
            pre = x @ a
            h = np.maximum(pre, 0)
            logits = h @ b
            shifted = logits - logits.max(1, keepdims=True)
            lse = np.log(np.exp(shifted).sum(1, keepdims=True))
            loss = F32(((lse - shifted) * y).sum() / n)
            soft = np.exp(shifted - lse)
            dlogits = (soft * y.sum(1, keepdims=True) - y) / F32(n)
            db = h.T @ dlogits
            da = x.T @ ((dlogits @ b.T) * (pre > 0))
            state[:] = [a - F32(LEARNING_RATE) * da, b - F32(LEARNING_RATE) * db]
            return (loss, *state)

        return Side(step, note="backpropagation by hand")

    def llgrad(self) -> Side:
        xb, yb = llgrad.tensor(self.x), llgrad.tensor(self.y)
        state = {"a": llgrad.tensor(self.a, requires_grad=True),
                 "b": llgrad.tensor(self.b, requires_grad=True)}
        n = self.batch

        def step():
            a, b = state["a"], state["b"]
            loss = loss_of(xb, yb, a, b, n)
            loss.backward()
            state["a"] = (a - LEARNING_RATE * a.grad).detach().requires_grad_()
            state["b"] = (b - LEARNING_RATE * b.grad).detach().requires_grad_()
            return loss, state["a"], state["b"]

        return Side(step)

    def llgrad_compiled(self) -> str:
        return "not applicable: the step re-binds tensors in a dict, which a trace cannot see"

    def torch(self, torch, compiled: bool) -> Side | None:
        if compiled:
            return None
        xb, yb = torch.tensor(self.x), torch.tensor(self.y)
        state = {"a": torch.tensor(self.a, requires_grad=True), "b": torch.tensor(self.b, requires_grad=True)}
        n = self.batch

        def step():
            a, b = state["a"], state["b"]
            loss = loss_of(xb, yb, a, b, n)
            loss.backward()
            state["a"] = (a - LEARNING_RATE * a.grad).detach().requires_grad_()
            state["b"] = (b - LEARNING_RATE * b.grad).detach().requires_grad_()
            return loss, state["a"], state["b"]

        return Side(step, note=torch_note(False) or "the same loop")

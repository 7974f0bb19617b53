"""softmax-xent: log-softmax cross-entropy of (4096, 1024) logits, forward + backward."""

from __future__ import annotations

import llgrad
import numpy as np

from ..core import Side, Workload
from .common import F32, LlgradCrossEntropy, numpy_xent, rng, torch_maybe_compiled, torch_note


class SoftmaxXent(Workload):
    name = "softmax-xent"
    summary = "log-softmax cross-entropy, ({rows}, {classes}) float32 logits, forward+backward"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.rows, self.classes = (256, 128) if quick else (4096, 1024)
        gen = rng(2)
        self.logits = gen.standard_normal((self.rows, self.classes)).astype(F32) * F32(3)
        self.targets = gen.integers(0, self.classes, self.rows)

    def bytes_moved(self) -> int:
        return 2 * self.logits.nbytes + self.targets.size * 8  # read logits and targets, write grad

    def numpy(self) -> Side:
        return Side(lambda: numpy_xent(self.logits, self.targets), note="gradient by hand: softmax - onehot")

    def llgrad(self) -> Side:
        x = llgrad.tensor(self.logits, requires_grad=True)
        loss_fn = LlgradCrossEntropy(self.targets, self.classes)

        def step():
            x.grad = None
            loss = loss_fn(x)
            loss.backward()
            return loss, x.grad

        return Side(step, note=loss_fn.note)

    def torch(self, torch, compiled: bool) -> Side:
        functional = torch.nn.functional
        x = torch.tensor(self.logits, requires_grad=True)
        targets = torch.tensor(self.targets)
        loss_fn = torch_maybe_compiled(torch, functional.cross_entropy, compiled)

        def step():
            x.grad = None
            loss = loss_fn(x, targets)
            loss.backward()
            return loss, x.grad

        return Side(step, note=torch_note(compiled) or "F.cross_entropy")

    def jax(self, jax) -> Side:
        jnp = jax.numpy

        def loss_fn(logits, targets):
            log_probs = jax.nn.log_softmax(logits, axis=1)
            return -jnp.take_along_axis(log_probs, targets[:, None], axis=1).mean()

        loss_and_grad = jax.jit(jax.value_and_grad(loss_fn))
        x, targets = jnp.asarray(self.logits), jnp.asarray(self.targets.astype(np.int32))
        return Side(lambda: jax.block_until_ready(loss_and_grad(x, targets)))

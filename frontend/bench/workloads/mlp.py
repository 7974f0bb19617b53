"""mlp: one training step of a 784-512-512-10 ReLU MLP at batch 128 (cross-entropy, SGD update).

Every side starts from the same weights; the first step's loss, gradients and updated weights
are compared with NumPy's. Weights are stored (in, out) so a layer is `x @ W + b`; PyTorch's
nn.Linear keeps (out, in), so its outputs are transposed for the comparison.
"""

from __future__ import annotations

import llgrad
import numpy as np

from ..core import Side, Workload
from .common import F32, LlgradCrossEntropy, llgrad_optimizer, numpy_xent, rng, torch_note

LEARNING_RATE = 0.05


class Mlp(Workload):
    name = "mlp"
    summary = "training step, {layers} ReLU MLP, batch {batch}, cross-entropy, SGD"
    tolerance = 2e-4

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.dims = (784, 64, 64, 10) if quick else (784, 512, 512, 10)
        self.batch = 16 if quick else 128
        self.layers = "-".join(map(str, self.dims))
        gen = rng(3)
        self.params = []  # [W1, b1, W2, b2, W3, b3]
        for fan_in, fan_out in zip(self.dims, self.dims[1:]):
            self.params.append((gen.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(F32))
            self.params.append(gen.uniform(-0.1, 0.1, fan_out).astype(F32))
        self.inputs = gen.standard_normal((self.batch, self.dims[0])).astype(F32)
        self.targets = gen.integers(0, self.dims[-1], self.batch)

    def flops(self) -> float:
        layer = [2 * self.batch * i * o for i, o in zip(self.dims, self.dims[1:])]
        return 3 * sum(layer) - layer[0]  # forward, grad of weights, grad of inputs but not layer 1's

    def numpy(self) -> Side:
        params = [p.copy() for p in self.params]
        x, targets = self.inputs, self.targets

        def step():
            acts = [x]
            for i in range(0, len(params), 2):
                z = acts[-1] @ params[i] + params[i + 1]
                acts.append(np.maximum(z, 0) if i + 2 < len(params) else z)
            loss, grad_out = numpy_xent(acts[-1], targets)
            grads = [None] * len(params)
            for i in range(len(params) - 2, -1, -2):
                grads[i], grads[i + 1] = acts[i // 2].T @ grad_out, grad_out.sum(0)
                if i:
                    grad_out = (grad_out @ params[i].T) * (acts[i // 2] > 0)
            for p, g in zip(params, grads):
                p -= F32(LEARNING_RATE) * g
            return (loss, *grads, *params)

        return Side(step, note="backpropagation by hand")

    def llgrad(self) -> Side:
        params = [llgrad.tensor(p, requires_grad=True) for p in self.params]
        x = llgrad.tensor(self.inputs)
        loss_fn = LlgradCrossEntropy(self.targets, self.dims[-1])
        sgd = llgrad_optimizer("SGD")
        optimizer = sgd(params, lr=LEARNING_RATE) if sgd else None

        def step():
            h = x
            for i in range(0, len(params), 2):
                h = h @ params[i] + params[i + 1]
                if i + 2 < len(params):
                    h = h.relu()
            loss = loss_fn(h)
            for p in params:
                p.grad = None
            loss.backward()
            if optimizer is not None:
                optimizer.step()
            else:
                with llgrad.no_grad():
                    for p in params:
                        p.sub_(LEARNING_RATE * p.grad)
            # The update stays pending (lazy) and is computed with the next step's program, as in
            # a real training loop; the check below reads the weights, which realizes them.
            return (loss, *[p.grad for p in params], *params)

        update = "llgrad.optim.SGD" if optimizer else "p.sub_(lr * p.grad) under no_grad"
        return Side(step, note=f"{loss_fn.note}; {update}")

    def torch(self, torch, compiled: bool) -> Side:
        nn = torch.nn
        layers = [nn.Linear(i, o) for i, o in zip(self.dims, self.dims[1:])]
        model = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])
        with torch.no_grad():
            for layer, (w, b) in zip(layers, zip(self.params[::2], self.params[1::2])):
                layer.weight.copy_(torch.from_numpy(w.T.copy()))
                layer.bias.copy_(torch.from_numpy(b))
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        x, targets = torch.tensor(self.inputs), torch.tensor(self.targets)
        loss_fn = lambda: torch.nn.functional.cross_entropy(model(x), targets)
        loss_fn = torch.compile(loss_fn, dynamic=False) if compiled else loss_fn

        def step():
            optimizer.zero_grad()
            loss = loss_fn()
            loss.backward()
            optimizer.step()
            return loss

        def outputs(loss):
            params = list(model.parameters())
            as_in_out = lambda t: t.T if t.dim() == 2 else t
            return (loss, *[as_in_out(p.grad) for p in params], *[as_in_out(p) for p in params])

        return Side(step, outputs, note=torch_note(compiled) or "nn.Sequential, F.cross_entropy, optim.SGD")

    def jax(self, jax) -> Side:
        jnp = jax.numpy

        def loss_fn(params, x, targets):
            h = x
            for i in range(0, len(params), 2):
                h = h @ params[i] + params[i + 1]
                if i + 2 < len(params):
                    h = jax.nn.relu(h)
            log_probs = jax.nn.log_softmax(h, axis=1)
            return -jnp.take_along_axis(log_probs, targets[:, None], axis=1).mean()

        @jax.jit
        def train_step(params, x, targets):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, targets)
            return loss, grads, [p - LEARNING_RATE * g for p, g in zip(params, grads)]

        state = [[jnp.asarray(p) for p in self.params]]
        x, targets = jnp.asarray(self.inputs), jnp.asarray(self.targets.astype(np.int32))

        def step():
            loss, grads, state[0] = jax.block_until_ready(train_step(state[0], x, targets))
            return (loss, *grads, *state[0])

        return Side(step, note="jit of value_and_grad and the update")

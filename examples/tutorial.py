"""The autograd tutorial of the seed notebooks, run on llgrad: only the import differs from PyTorch.

    python examples/tutorial.py

Each section prints what the notebooks print. Nothing is computed when an op is written: values
are computed (forward and backward fused and compiled, then cached) when printed or backpropagated.
The last section trains a tiny model with llgrad.nn and llgrad.optim.
"""

from __future__ import annotations

import llgrad as torch
from llgrad.autograd import Variable


def section(title: str) -> None:
    print(f"\n## {title}")


def tensors_that_require_grad() -> None:
    section("Tensors that require grad, and their history")
    x = torch.ones(2, 2, requires_grad=True)
    print(x)
    y = x + 2
    print(y)
    print(y.grad_fn)  # y was created by an operation: it has a grad_fn
    z = y * y * 3
    out = z.mean()
    print(z, out)
    out.backward()  # d(out)/dx = 3 * 2 * (x + 2) / 4 = 4.5
    print(x.grad)


def legacy_variable() -> None:
    section("The legacy Variable API")
    x = Variable(torch.Tensor([[1, 2], [3, 4]]), requires_grad=True)
    y = x - 2
    print(y.grad_fn, x.grad_fn)
    print(y.grad_fn.next_functions[0][0].variable is x)  # AccumulateGrad holds the leaf
    out = (y * y * 3).mean()
    out.backward()
    print(x.grad)


def dynamic_graphs() -> None:
    section("Dynamic graphs: Python control flow decides the graph")
    torch.manual_seed(0)
    x = Variable(torch.randn(3), requires_grad=True)
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    print(y)
    gradients = torch.FloatTensor([0.1, 1.0, 0.0001])
    y.backward(gradients)  # a vector-Jacobian product: y is not a scalar
    print(x.grad)


def accumulation_and_detach() -> None:
    section("Gradients accumulate; detach() cuts the history")
    x = torch.arange(4.0)
    x.requires_grad_(True)
    y = 2 * torch.dot(x, x)
    y.backward()
    print(x.grad, x.grad == 4 * x)
    x.grad.zero_()  # without this, the next backward adds to it
    x.sum().backward()
    print(x.grad)
    x.grad.zero_()
    y = x * x
    u = y.detach()  # a constant as far as autograd is concerned
    (u * x).sum().backward()
    print(x.grad == u)


def control_flow() -> None:
    section("Gradient through Python control flow")

    def f(a):
        b = a * 2
        while b.norm() < 10:
            b = b * 2
        return b if b.sum() > 0 else 100 * b

    torch.manual_seed(1)
    a = torch.randn(size=(), requires_grad=True)
    d = f(a)
    d.backward()
    print(a.grad == d / a)  # f is linear in a along the path taken


def no_grad() -> None:
    section("no_grad: computing without recording")
    x = torch.ones(3, requires_grad=True)
    print((x ** 2).requires_grad)
    with torch.no_grad():
        print((x ** 2).requires_grad)


def training() -> None:
    section("And then: a model, a loss, an optimizer")
    torch.manual_seed(2)
    x = torch.randn(64, 4)
    y = (x[:, 0] + x[:, 1] > 0).long()  # a separable two-class problem
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for step in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()  # forward + backward: one compiled program, cached after step 0
        optimizer.step()  # the update: one more, also cached
        if step % 10 == 0:
            print(f"step {step:2d}  loss {loss.item():.4f}")
    accuracy = (model(x).argmax(dim=1) == y).float().mean()
    print(f"training accuracy {accuracy.item():.0%}")
    print(model)
    stats = torch.runtime.stats()
    print("runtime:", {k: stats[k] for k in ("compiles", "cache_hits", "runs")})


def main() -> None:
    tensors_that_require_grad()
    legacy_variable()
    dynamic_graphs()
    accumulation_and_detach()
    control_flow()
    no_grad()
    training()


if __name__ == "__main__":
    main()

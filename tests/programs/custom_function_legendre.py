"""'Learning PyTorch with Examples': a custom autograd Function (the Legendre polynomial P3)
inside a model fit by hand-written gradient descent."""

import math
import os

if os.environ.get("PROGRAM_LIB") == "torch":
    import torch
else:
    import llgrad as torch

from harness import report, step


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


dtype = torch.float
x = torch.linspace(-math.pi, math.pi, 2000, dtype=dtype)
y = torch.sin(x)

a = torch.full((), 0.0, dtype=dtype, requires_grad=True)
b = torch.full((), -1.0, dtype=dtype, requires_grad=True)
c = torch.full((), 0.0, dtype=dtype, requires_grad=True)
d = torch.full((), 0.3, dtype=dtype, requires_grad=True)

learning_rate = 5e-6
losses = []
for t in range(300):
    P3 = LegendrePolynomial3.apply
    y_pred = a + b * P3(c + d * x)
    loss = (y_pred - y).pow(2).sum()
    if t % 100 == 99:
        losses.append(loss.item())
    loss.backward()
    with torch.no_grad():
        for p in (a, b, c, d):
            p -= learning_rate * p.grad
            p.grad = None
    step()

report("losses", losses)
report("coefficients", [a, b, c, d])
report("grad_fn", [float(type(y_pred.grad_fn).__name__ == "AddBackward0"),
                   float(type(y_pred.grad_fn.next_functions[1][0].next_functions[1][0]).__name__
                         == "LegendrePolynomial3Backward")])
print(f"Result: y = {a.item()} + {b.item()} * P3({c.item()} + {d.item()} x)")

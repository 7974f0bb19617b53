"""Jacobians and Hessians with torch.autograd.functional, used by Newton's method on a small
least-squares problem, and checked against each other (vjp/jvp/hvp agree with the matrices)."""

import os

import numpy as np

if os.environ.get("PROGRAM_LIB") == "torch":
    import torch
else:
    import llgrad as torch

from harness import report, step

F = torch.autograd.functional
rng = np.random.default_rng(1)
A = torch.tensor(rng.standard_normal((6, 3)), dtype=torch.float64)
target = torch.tensor(rng.standard_normal(6), dtype=torch.float64)


def residuals(w):
    return torch.tanh(A @ w) - target


def objective(w):
    r = residuals(w)
    return (r * r).sum() + 0.1 * (w ** 4).sum()


w = torch.zeros(3, dtype=torch.float64)
values = []
for _ in range(8):
    g = F.jacobian(objective, w)
    H = F.hessian(objective, w)
    w = w - torch.tensor(np.linalg.solve(H.numpy(), g.numpy()))  # the 3x3 solve in NumPy
    values.append(objective(w).item())
    step()

J = F.jacobian(residuals, w)
v = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
u = torch.tensor(rng.standard_normal(6), dtype=torch.float64)
_, jv = F.jvp(residuals, w, v)
_, uj = F.vjp(residuals, w, u)
_, hv = F.hvp(objective, w, v)
H = F.hessian(objective, w)
report("objective", values)
report("solution", w)
report("jacobian", J)
report("hessian", H)
report("jvp_matches", float(np.allclose(jv.numpy(), J.numpy() @ v.numpy())))
report("vjp_matches", float(np.allclose(uj.numpy(), u.numpy() @ J.numpy())))
report("hvp_matches", float(np.allclose(hv.numpy(), H.numpy() @ v.numpy())))
report("jacobian_pair", [m for row in F.jacobian(lambda a, b: (a * b, (a + b).exp()), (v, w)) for m in row])
print("objective:", values[-1])

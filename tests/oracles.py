"""Oracles for op tests: NumPy for values, central finite differences for gradients."""

from __future__ import annotations

import llgrad
import numpy as np


def value_of(t) -> np.ndarray:
    return np.asarray(t.detach().numpy(), dtype=np.float64)


def numeric_grads(fn, arrays: list[np.ndarray], eps: float = 1e-6) -> list[np.ndarray]:
    """d sum(fn(*inputs) * w) / d input, by central differences in float64 (w fixed random)."""
    rng = np.random.default_rng(7)
    base = fn(*[llgrad.tensor(a) for a in arrays])
    weights = rng.uniform(0.5, 1.5, size=tuple(base.shape))

    def scalar(args):
        return float(np.sum(value_of(fn(*[llgrad.tensor(a) for a in args])) * weights))

    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a, dtype=np.float64)
        for idx in np.ndindex(*a.shape):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (scalar(plus) - scalar(minus)) / (2 * eps)
        grads.append(g)
    return grads, weights


def analytic_grads(fn, arrays: list[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
    inputs = [llgrad.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    out.backward(llgrad.tensor(weights))
    return [np.zeros(a.shape) if t.grad is None else value_of(t.grad) for a, t in zip(arrays, inputs)]


def check_gradients(fn, *arrays, rtol=1e-5, atol=1e-6) -> None:
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    numeric, weights = numeric_grads(fn, arrays)
    analytic = analytic_grads(fn, arrays, weights)
    for i, (n, a) in enumerate(zip(numeric, analytic)):
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")

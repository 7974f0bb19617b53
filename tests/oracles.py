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


def torch_or_skip():
    import pytest

    return pytest.importorskip("torch")


def run_both(fn, *arrays, grad: bool = True, seed_grad=None):
    """Run `fn(lib, *tensors)` on llgrad and on PyTorch with the same float data.

    Returns ((llgrad value, llgrad grads), (torch value, torch grads)) as NumPy arrays.
    """
    torch = torch_or_skip()
    results = []
    for lib in (llgrad, torch):
        ts = [lib.tensor(a, requires_grad=grad and np.asarray(a).dtype.kind == "f") for a in arrays]
        out = fn(lib, *ts)
        value = out.detach().numpy().copy()
        grads = []
        if grad and out.requires_grad:
            w = seed_grad
            if w is None:
                w = np.random.default_rng(3).uniform(0.5, 1.5, value.shape)
            out.backward(lib.tensor(np.asarray(w, dtype=value.dtype)))
            grads = [None if t.grad is None else t.grad.numpy().copy() for t in ts]
        results.append((value, grads))
    return results


def assert_match_torch(fn, *arrays, rtol=1e-5, atol=1e-6, grad=True):
    (lv, lg), (tv, tg) = run_both(fn, *arrays, grad=grad)
    np.testing.assert_allclose(lv, tv, rtol=rtol, atol=atol)
    assert lv.dtype == tv.dtype, (lv.dtype, tv.dtype)
    for i, (a, b) in enumerate(zip(lg, tg)):
        if a is None or b is None:
            assert a is None and b is None, f"grad {i}: llgrad {a is None}, torch {b is None}"
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"grad {i}")

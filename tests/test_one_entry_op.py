"""Adding an elementwise op with its gradient is one entry (compiler/ops/elementwise.define): this
file registers `softsign` itself and uses it from Python, through autograd, LLVM and MLIR."""

from __future__ import annotations

import llgrad
import numpy as np
import pytest
from llgrad.compiler.ops import OPS
from llgrad.compiler.ops.elementwise import define, float_infer
from llgrad.runtime import backend, mlir_backend
from test_mlir_valid import MLIR_OPT, verify


def _softsign(s, args, dt, attrs):  # x / (1 + |x|)
    (x,) = args
    return s.binary("div", x, s.binary("add", s.const(1.0, dt), s.math("fabs", x, dt), dt), dt)


def _vjp_softsign(e, g, c):  # d/dx = 1 / (1 + |x|)^2
    d = e.add(e.abs(c.srcs[0]), 1)
    return (e.div(g, e.mul(d, d)),)


if "softsign" not in OPS:
    define("softsign", float_infer, _softsign, _vjp_softsign, saves={0: (0,)}, grad_fn="SoftsignBackward0",
           public="softsign")

X = np.array([[-3.0, -0.5, 0.0], [0.25, 2.0, 7.5]])


def reference(x):
    return x / (1 + np.abs(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_methods_and_in_place(dtype):
    x = llgrad.tensor(X.astype(dtype))
    np.testing.assert_allclose(llgrad.softsign(x).numpy(), reference(X), rtol=1e-6)
    np.testing.assert_allclose(x.softsign().numpy(), reference(X), rtol=1e-6)
    y = x.clone()
    y.softsign_()
    np.testing.assert_allclose(y.numpy(), reference(X), rtol=1e-6)
    assert llgrad.softsign(llgrad.tensor([1, -3])).dtype is llgrad.float32  # integers compute in float


def test_gradient_against_finite_differences():
    x = llgrad.tensor(X, requires_grad=True)
    w = np.linspace(0.5, 1.5, X.size).reshape(X.shape)
    out = (llgrad.softsign(x) * llgrad.tensor(w)).sum()
    assert type(llgrad.softsign(x).grad_fn).__name__ == "SoftsignBackward0"
    out.backward()
    eps, want = 1e-6, np.zeros_like(X)
    for i in np.ndindex(X.shape):
        up, down = X.copy(), X.copy()
        up[i] += eps
        down[i] -= eps
        want[i] = ((reference(up) - reference(down)) * w).sum() / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6, atol=1e-9)


def test_the_llvm_path_fuses_it():
    x = llgrad.tensor(X.astype(np.float32))
    prog = llgrad.debug.program((llgrad.softsign(x) * 2).sum())
    assert len(prog.kernels) == 1 and "softsign" in prog.kernels[0].fused
    asm = prog.assembly()
    assert "vdivps" in asm or "divss" in asm or "vdivss" in asm  # the division of its rule


@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-19 is not installed")
def test_the_mlir_dumps_show_its_rule_and_verify():
    x = llgrad.tensor(X.astype(np.float32))
    out = llgrad.softsign(x) + 1
    texts = [llgrad.debug.dump(out, stage=stage) for stage in ("forward", "kernels")]
    for text in texts:
        assert "math.absf" in text and "arith.divf" in text
    assert verify(texts) == []


@pytest.mark.skipif(mlir_backend.tools() is None, reason="mlir-opt-19 / mlir-translate-19 not installed")
def test_the_mlir_backend_computes_it_too():
    x = llgrad.tensor(X.astype(np.float32))
    ours = (llgrad.softsign(x) * 3).numpy()
    backend.set_backend("mlir")
    try:
        theirs = (llgrad.softsign(llgrad.tensor(X.astype(np.float32))) * 3).numpy()
    finally:
        backend.set_backend("llgrad")
    np.testing.assert_allclose(theirs, ours, rtol=1e-6)

"""Compile work scales with distinct work: each distinct kernel is compiled once (runtime/kernels.py)
and a program's entry is a table, not code per call (compiler/codegen.build_entry_module)."""

from __future__ import annotations

import llgrad
import numpy as np
import pytest
from llgrad.bench import compile_times
from llgrad.compiler import codegen
from llgrad.compiler.kernel_key import kernel_key
from llgrad.runtime import executor, kernels


def kernels_compiled() -> int:
    return kernels.stats()["compiled"]


def tanh_net(depth: int, seed: int = 0) -> tuple[float, np.ndarray]:
    rng = np.random.default_rng(seed)
    ws = [llgrad.tensor(rng.standard_normal((4, 4)).astype(np.float32) * 0.5, requires_grad=True)
          for _ in range(depth)]
    h = llgrad.tensor(rng.standard_normal((2, 4)).astype(np.float32))
    for w in ws:
        h = llgrad.tanh(h @ w)
    loss = h.sum()
    loss.backward()
    return loss.item(), ws[0].grad.numpy()


def tanh_net_reference(depth: int, seed: int = 0) -> tuple[float, np.ndarray]:
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((4, 4)).astype(np.float32).astype(np.float64) * 0.5 for _ in range(depth)]
    hs = [rng.standard_normal((2, 4)).astype(np.float32).astype(np.float64)]
    for w in ws:
        hs.append(np.tanh(hs[-1] @ w))
    g = np.ones_like(hs[-1])
    for k in range(depth - 1, -1, -1):
        d = g * (1 - hs[k + 1] ** 2)
        grad0 = hs[k].T @ d
        g = d @ ws[k].T
    return float(hs[-1].sum()), grad0


def test_a_deeper_net_of_the_same_layers_compiles_no_new_kernel():
    executor.clear_memory_cache()
    before = kernels_compiled()
    tanh_net(4)
    first = kernels_compiled() - before
    assert first > 0
    for depth in (9, 17):
        before = kernels_compiled()
        value, grad = tanh_net(depth)
        assert kernels_compiled() == before, f"depth {depth} compiled new kernels"
        want_value, want_grad = tanh_net_reference(depth)
        assert value == pytest.approx(want_value, rel=1e-4)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-3, atol=1e-5)


def unrolled(x, w, steps: int):
    """An RNN-like recurrence reading column t of x at step t (x[:, t] is read at i * n + t):
    the matmul of each step is a kernel boundary, so the steps are kernels of their own."""
    h = x[:, :1] * w[:1] * 0
    for t in range(steps):
        h = (h @ w + x[:, t:t + 1]).tanh()
    return h


def unrolled_reference(x, w, steps: int):
    h = x[:, :1] * w[:1] * 0
    for t in range(steps):
        h = np.tanh(h @ w + x[:, t:t + 1])
    return h


def test_the_steps_of_an_unrolled_loop_share_their_kernels():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((5, 12)).astype(np.float32)
    w_data = rng.standard_normal((4, 4)).astype(np.float32) * 0.5
    executor.clear_memory_cache()
    compiled = {}
    for steps in (4, 8, 12):
        x, w = llgrad.tensor(data, requires_grad=True), llgrad.tensor(w_data, requires_grad=True)
        before = kernels_compiled()
        out = unrolled(x, w, steps)
        out.sum().backward()
        compiled[steps] = kernels_compiled() - before
    # The steps' kernels are shared; what a longer unroll adds is the kernels whose fused work
    # depends on the length (x.grad assembled from every column, w.grad summed over steps).
    assert compiled[4] > compiled[8] == compiled[12] <= 2, compiled
    # values and gradients against float64 finite differences of the same recurrence
    ref, w_ref = data.astype(np.float64), w_data.astype(np.float64)
    np.testing.assert_allclose(out.detach().numpy(), unrolled_reference(ref, w_ref, 12), rtol=1e-4, atol=1e-6)
    eps, grad = 1e-6, np.zeros_like(ref)
    for i in range(ref.shape[0]):
        for j in range(ref.shape[1]):
            up, down = ref.copy(), ref.copy()
            up[i, j] += eps
            down[i, j] -= eps
            diff = unrolled_reference(up, w_ref, 12).sum() - unrolled_reference(down, w_ref, 12).sum()
            grad[i, j] = diff / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-3, atol=1e-5)


def test_the_entry_calls_each_distinct_kernel_from_one_place():
    tanh_net(12)
    sched = executor.last_program().schedule
    keys = [kernel_key(k) for k in sched.kernels]
    distinct = {k.symbol for k in keys}
    assert len(sched.kernels) > 3 * len(distinct)  # many calls of few kernels
    entry = str(codegen.build_entry_module(sched.kernels, keys, "entry_under_test"))
    calls = [ln for ln in entry.splitlines() if ln.strip().startswith("call void @\"llk_")]
    assert len(calls) == len(distinct)


def test_the_bench_compile_section_reports_each_case(monkeypatch):
    monkeypatch.setattr(compile_times, "CASES", [("tanh", (3,), (2, 3), 1.0)])
    rows = compile_times.run(quick=True)
    assert [(r["case"], r["size"]) for r in rows] == [("tanh", 2), ("tanh", 3)]
    for r in rows:
        assert "error" not in r, r
        assert r["programs"] >= 1 and r["kernels"] >= 1 and r["nodes"] > 0 and r["seconds"] > 0
    assert "tanh" in compile_times.format_rows(rows)

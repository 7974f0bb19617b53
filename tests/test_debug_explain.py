"""explain and to_dot: the kernels of a program, what each fused, and why each boundary is there.

The reasons are those the scheduler recorded at the point it decided (schedule(trace=True)),
checked here for three situations: a chain fused into its reduction, a reduction feeding a
broadcast along another dim, and a matmul.
"""

from __future__ import annotations

import re

import llgrad
from llgrad.compiler.schedule import schedule
from llgrad.compiler.signature import canonicalize


def test_elementwise_chain_fuses_into_its_reduction():
    x = llgrad.rand(64, 32)
    out = ((x * 2.0).exp() + 1.0).sum()
    text = llgrad.debug.explain(out)
    assert text.count("\nkernel ") == 1
    assert "kernel 0: fused_mul_exp_add_sum_64x32" in text
    for op in ("mul(%in0, %p0)", "exp(", "add(", "sum("):
        assert op in text
    assert "-> buffer out" in text and "output needed by the user" in text
    assert llgrad.debug.kernels(out) == ["fused_mul_exp_add_sum_64x32"]


def test_reduction_feeding_a_broadcast_starts_a_new_kernel():
    x = llgrad.rand(8, 8)
    row_sums = x.sum(dim=1)  # one per row ...
    out = x - row_sums  # ... broadcast along the rows: needs every row's sum first
    text = llgrad.debug.explain(out)
    assert text.count("\nkernel ") == 2, text
    kernel1 = text[text.index("\nkernel 1"):]
    assert "could not join an earlier kernel" in kernel1
    assert re.search(r"k0: it reads the reduction %\d+ of kernel k0 at another index", kernel1)
    assert "a reduction feeding a broadcast" in kernel1
    assert re.search(r"\n\s+%\d+ from kernel 0: reduction", kernel1)


def test_matmul_is_a_kernel_of_its_own():
    a, b = llgrad.rand(16, 8), llgrad.rand(8, 4)
    out = (a @ b).relu()
    text = llgrad.debug.explain(out)
    assert "kernel 0: matmul_16x4_k8" in text and "matmul: a kernel template of its own" in text
    kernel1 = text[text.index("\nkernel 1"):]
    assert "k0: kernel k0 is a matmul loop nest of its own" in kernel1
    assert "relu(" in kernel1


def test_reasons_are_recorded_by_the_scheduler_itself():
    x = llgrad.rand(8, 8)
    out = x - x.sum(dim=1)
    key, inputs, params = canonicalize([out._node])
    sched = schedule([out._node], inputs, params, trace=True)
    trace = sched.trace
    assert [k.name for k in sched.kernels] == llgrad.debug.kernels(out)
    reasons = [why for per_group in trace.refusals.values() for why, _ in per_group.values()]
    assert "broadcast" in reasons
    assert set(trace.why_materialized.values()) >= {"output", "reduction"}
    untraced = schedule([out._node], inputs, params)
    assert untraced.trace is None  # recording is opt-in: programs never hold graph nodes


def test_explain_of_a_training_step_names_backward_ops():
    w = llgrad.rand(10, 3, requires_grad=True)
    x = llgrad.rand(4, 10)

    def step():
        loss = (x @ w).tanh().mean()
        loss.backward()
        return loss

    text = llgrad.debug.explain(step)
    assert text.startswith("program llgrad_")
    assert "[backward]" in text and "matmul" in text
    assert "test_debug_explain.py:" in text  # each fused op with the line that made it


def test_to_dot_draws_kernels_as_clusters():
    x = llgrad.rand(8, 8)
    dot = llgrad.debug.to_dot(x - x.sum(dim=1))
    assert dot.startswith('digraph "llgrad_')
    assert dot.count("subgraph cluster_k") == 2
    assert "peripheries=2" in dot and "->" in dot and dot.rstrip().endswith("}")

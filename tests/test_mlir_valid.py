"""The MLIR that llgrad prints is real MLIR: mlir-opt-19 verifies every stage's module.

The graphs below cover every kind of op (elementwise, reductions, views, matmul,
indexing, scans, composites, integer and bool dtypes, forward and backward);
test_mlir_backend.py runs the same graphs through MLIR's own lowering, and
test_zz_mlir_suite.py verifies the graphs of the whole test suite.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading

import llgrad
import numpy as np
import pytest

MLIR_OPT = shutil.which("mlir-opt-19")
needs_mlir = pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-19 is not installed (mlir-19-tools)")
MLIR_STAGES = "forward,backward,optimized,kernels"


def verify(modules: list[str]) -> list[str]:
    """mlir-opt-19's complaints about each module (empty: all valid): one run per CPU."""
    if not modules:
        return []
    parts = max(1, min(os.cpu_count() or 1, len(modules) // 50))
    chunks = [modules[k::parts] for k in range(parts)]
    runs = [subprocess.Popen([MLIR_OPT, "--split-input-file", "-o", "/dev/null", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in chunks]
    threads = [threading.Thread(target=_feed, args=(run, "\n// -----\n".join(chunk)))
               for run, chunk in zip(runs, chunks)]
    for t in threads:
        t.start()
    errors = []
    for run, chunk, t in zip(runs, chunks, threads):
        t.join()
        if run.returncode != 0:
            errors += _locate(chunk, run.stderr_text)
    return errors


def _feed(run, text: str) -> None:
    run.stderr_text = run.communicate(text, timeout=900)[1]


def _locate(modules: list[str], stderr: str) -> list[str]:
    """Each failing module's header line and mlir-opt's complaint (found by bisection: errors
    point at the user's source locations, not at the dump's lines)."""
    if len(modules) == 1:
        return [f"{modules[0].splitlines()[0]}\n{stderr.strip()[:2000]}"]
    half = len(modules) // 2
    errors = []
    for part in (modules[:half], modules[half:]):
        done = subprocess.run([MLIR_OPT, "--split-input-file", "-o", "/dev/null", "-"],
                              input="\n// -----\n".join(part), capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            errors += _locate(part, done.stderr)
    return errors


def modules_of(text: str) -> list[str]:
    """Split the text of llgrad.debug.dump into its modules (one per stage per program)."""
    chunks = re.split(r"\n(?=// llgrad program )", text.strip())
    return [c for c in chunks if "(this program has no" not in c]


def _rng(seed=0):
    return np.random.default_rng(seed)


def t(shape, seed=0, grad=True, dtype=np.float32, low=-2.0, high=2.0):
    a = _rng(seed).uniform(low, high, size=shape).astype(dtype)
    return llgrad.tensor(a, requires_grad=grad and np.issubdtype(dtype, np.floating))


def _grads(loss, *leaves):
    loss.backward()
    return [loss] + [x.grad for x in leaves]


# Each returns the tensors it computes (forward values and gradients).
def g_elementwise():
    x, y = t((3, 4)), t((4,), 1)
    out = ((x * y + 2.5).exp() / (x.abs() + 1)).tanh() - x.sigmoid() ** 2 + (x - 0.5).relu()
    out = out + x.sqrt().nan_to_num(0) if hasattr(out, "nan_to_num") else out + (x * x + 1).sqrt()
    out = out + (x + 3).log() + x.sin() * x.cos() + x.reciprocal().clamp(-5, 5) + x.sign()
    out = out + x.maximum(y) - x.minimum(y * 2) + x.pow(2) + (x.abs() + 0.5).pow(y)
    out = out + x.exp2() + x.expm1() + (x.abs()).log1p() + (x.abs() + 1).rsqrt()
    out = out + x.floor() + x.ceil() + x.round() + x.trunc()
    return _grads(out.sum(), x, y)


def g_compare_where():
    x, y = t((5, 3)), t((5, 3), 2)
    m = (x > y) & (x >= 0) | (x == y) | (x != 1) & ~(x < -1) & (x <= 1.5)
    z = llgrad.where(m, x, y * 2).masked_fill(x < -1.5, 7.0).clamp(min=-1.0, max=1.0)
    return _grads(z.sum(), x, y) + [m, m.sum(), m.any() if hasattr(m, "any") else m]


def g_reductions():
    x = t((4, 5, 6))
    a = x.sum(dim=1) + x.mean(dim=(0, 2), keepdim=True).sum()
    b = x.max(dim=2)[0].sum() + x.min(dim=0, keepdim=True)[0].sum() + x.amax(dim=1).sum() + x.amin()
    c = x.prod(dim=2).sum() + x.var(dim=1).sum() + x.std() + x.logsumexp(dim=0).sum()
    d = x.norm() + x.norm(p=1) + x.norm(p=float("inf")) + x.norm(p=3, dim=1).sum()
    loss = a.sum() + b + c + d + x.max()
    return _grads(loss, x) + [x.argmax(dim=1), x.argmin(), x.softmax(dim=2), x.log_softmax(dim=0)]


def g_views():
    x = t((4, 6))
    y = x.reshape(3, 8).permute(1, 0)[1:7:2, ::2] + x.t()[1:5:2, ::2].sum()
    z = llgrad.cat([x[:, :3], x.flip(0)[:, 3:]], dim=1) + x.unsqueeze(0).expand(2, 4, 6).sum(0)
    parts = x.split(2, dim=0)
    w = llgrad.stack([parts[0], parts[1]]).sum(0) + x[1]
    loss = y.sum() + z.sum() + w.sum() + x.squeeze().unsqueeze(1).sum() + x.transpose(0, 1)[2].sum()
    return _grads(loss, x)


def g_matmul():
    a, b, v = t((3, 4)), t((4, 5), 1), t((4,), 2)
    c, d = t((2, 3, 4), 3), t((2, 4, 2), 4)
    loss = (a @ b).relu().sum() + a.mv(v).sum() + v.dot(v) + a.mm(b).t().sum(0).mean() + c.bmm(d).sum()
    return _grads(loss, a, b, v, c, d)


def g_indexing():
    x = t((5, 4))
    idx = llgrad.tensor([0, 3, -1, 3])
    y = x[idx].sum() + x[:, llgrad.tensor([1, 2])].sum() + x[idx, idx].sum()
    z = x.clone()
    z[1] = 5.0
    return _grads(y + z.sum(), x) + [z]


def g_scan_and_ints():
    x = t((3, 5))
    i = llgrad.arange(12).reshape(3, 4)
    r = (i * 3 + 1) // 2 if hasattr(i, "__floordiv__") else i * 3
    k = ((i * 2 - 1).abs() + i.sum(dim=1, keepdim=True)).max(dim=1)[0]
    b = (i % 2 == 0) if hasattr(i, "__mod__") else i > 5
    loss = x.cumsum(dim=1).sum() + x.cumsum(0)[2].sum() + x[0, 0].cumsum(0)
    return _grads(loss, x) + [r, k, b, b.sum(), i.cumsum(0), i.double() / 3, i.prod(), (i > 3).long().sum()]


def g_float64_and_scalars():
    x = t((7,), dtype=np.float64)
    lr = 0.1
    y = (x * lr - 3 * x ** 3 + 2 ** x - (1 - x)) / 7
    return _grads(y.sum(), x) + [x.float().sum(), (x > 0).float().mean()]


GRAPHS = [g_elementwise, g_compare_where, g_reductions, g_views, g_matmul, g_indexing,
          g_scan_and_ints, g_float64_and_scalars]


@needs_mlir
def test_every_stage_of_every_graph_verifies():
    modules = []
    for graph in GRAPHS:
        modules += modules_of(llgrad.debug.dump(graph, stage=MLIR_STAGES))
    assert len(modules) >= 3 * len(GRAPHS)
    assert verify(modules) == []


@needs_mlir
def test_verifier_catches_broken_modules():
    # The check itself must be able to fail: a module with a type error and one with an
    # unregistered op are rejected.
    good = modules_of(llgrad.debug.dump(lambda: (t((2, 2)) * 3).sum(), stage="optimized"))
    assert good and verify(good) == []
    broken = good[0].replace("arith.mulf", "arith.addi", 1)
    unregistered = good[0].replace("arith.mulf", "llgrad.mul", 1)
    assert broken != good[0] and len(verify([broken])) == 1
    assert len(verify([good[0], unregistered])) == 1


@needs_mlir
def test_tensor_level_ops_are_upstream_dialects_only():
    text = llgrad.debug.dump(g_reductions, stage="forward,backward,optimized,kernels")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    ops = set(re.findall(r"= ([a-z_]+\.[a-z_.]+)", code))
    ops |= set(re.findall(r"^\s+([a-z_]+\.[a-z_]+) ", code, re.M))
    dialects = {op.split(".")[0] for op in ops}
    assert dialects <= {"arith", "math", "linalg", "tensor", "func", "memref", "scf"}, dialects

"""Two backends, one answer: graphs lowered by MLIR's own pipeline match llgrad's lowering.

set_backend("mlir") lowers the tensor-level MLIR with mlir-opt-19 and mlir-translate-19
and JIT-compiles the LLVM IR with llvmlite; the results must equal llgrad's own
(within float tolerance: the math functions and summation orders differ).
"""

from __future__ import annotations

import llgrad
import numpy as np
import pytest
from llgrad.runtime import backend, mlir_backend
from test_mlir_valid import (
    g_compare_where,
    g_elementwise,
    g_float64_and_scalars,
    g_indexing,
    g_matmul,
    g_reductions,
    g_scan_and_ints,
    g_views,
)

needs_tools = pytest.mark.skipif(mlir_backend.tools() is None,
                                 reason="mlir-opt-19 / mlir-translate-19 not installed (mlir-19-tools)")

CROSS_CHECKED = [g_elementwise, g_compare_where, g_reductions, g_views, g_matmul, g_indexing,
                 g_scan_and_ints, g_float64_and_scalars]


@pytest.fixture
def restore_backend():
    yield
    backend.set_backend("llgrad")


def _values(graph) -> list[np.ndarray]:
    return [np.asarray(x.detach().numpy()) for x in graph()]


@needs_tools
@pytest.mark.parametrize("graph", CROSS_CHECKED, ids=lambda g: g.__name__)
def test_both_backends_agree(graph, restore_backend):
    ours = _values(graph)
    compiles = llgrad.runtime.stats()["compiles"]
    backend.set_backend("mlir")
    theirs = _values(graph)
    assert llgrad.runtime.stats()["compiles"] > compiles  # really compiled again, by the other backend
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5)
        else:
            np.testing.assert_array_equal(b, a)


@needs_tools
def test_mlir_program_is_what_the_dump_shows(restore_backend):
    backend.set_backend("mlir")
    x = llgrad.tensor([[1.0, -2.0], [3.0, 4.0]])
    y = (x.exp() * 2).sum(dim=1)
    prog = llgrad.debug.program(y)
    assert prog.backend == "mlir"
    text = llgrad.debug.dump(y, stage="kernels,llvm")
    assert "mlir-opt lowers this module" in text and "linalg.generic" in text
    assert f"define void @{prog.name}(ptr %buffers, ptr %params)" in text  # the adapter: llgrad's ABI
    np.testing.assert_allclose(y.numpy(), (np.exp(x.numpy()) * 2).sum(1), rtol=1e-6)


@needs_tools
def test_backend_refuses_ops_it_cannot_lower(restore_backend, monkeypatch):
    from llgrad.compiler.printer import FunctionPrinter

    # An op with no upstream form prints as a call of a private function: pretend scatter is one.
    monkeypatch.setattr(FunctionPrinter, "scatter", FunctionPrinter.opaque)
    backend.set_backend("mlir")
    x = llgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = x[llgrad.tensor([0, 0, 2])].sum()
    with pytest.raises(mlir_backend.MlirUnavailable, match="cannot lower op scatter_add"):
        loss.backward()


def test_backend_refuses_clearly_without_tools(monkeypatch):
    monkeypatch.delenv("LLGRAD_MLIR_OPT", raising=False)
    monkeypatch.delenv("LLGRAD_MLIR_TRANSLATE", raising=False)
    monkeypatch.setattr(mlir_backend.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install mlir-19-tools"):
        llgrad.runtime.set_backend("mlir")
    assert llgrad.runtime.get_backend() == "llgrad"
    with pytest.raises(ValueError, match="unknown backend"):
        llgrad.runtime.set_backend("tvm")


def test_backends_never_share_cached_programs(monkeypatch):
    key = (("in", (2,), "float32"),), (0,)
    assert backend.tag(key) == key
    monkeypatch.setattr(backend, "_current", [mlir_backend.MlirBackend()])
    assert backend.tag(key) != key


def test_backend_from_the_environment(tmp_path):
    import os
    import subprocess
    import sys

    script = "import llgrad\nx = llgrad.ones(3)\nprint((x * 2).sum().item(), llgrad.runtime.get_backend())\n"
    env = dict(os.environ, LLGRAD_BACKEND="mlir", LLGRAD_CACHE="0", LLGRAD_MLIR_OPT=str(tmp_path / "none"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "apt-get install mlir-19-tools" in done.stderr
    if mlir_backend.tools() is not None:
        env.pop("LLGRAD_MLIR_OPT")
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["6.0", "mlir"]

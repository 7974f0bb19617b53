"""Dumps of every stage: from Python (debug.dump, debug.dumping) and from the environment
(LLGRAD_DUMP, LLGRAD_DUMP_DIR), with headers, source locations and readable names."""

from __future__ import annotations

import inspect
import io
import os
import pathlib
import subprocess
import sys

import llgrad
import pytest
from llgrad.runtime import dump as dump_module

STAGE_MARKERS = {
    "forward": ["func.func @forward(", "linalg.generic", "tensor<"],
    "backward": ["func.func @backward(", "llgrad.backward"],
    "optimized": ["func.func @llgrad_", "linalg.generic"],
    "kernels": ["scf.for", "memref.load", "memref<"],
    "llvm": ["define void @llgrad_", "define void @llk_", "ptr noalias"],  # entry, kernels
    "llvm-opt": ["define ", " x float>"],  # vectorized
    "asm": ["\t.globl\tllgrad_", "ret"],
}


def _line() -> int:
    return inspect.currentframe().f_back.f_lineno


def step(x):
    y = (x * 2.0 + 1.0).exp()
    loss = (y * x).sum()
    loss.backward()
    return loss


@pytest.mark.parametrize("stage", list(STAGE_MARKERS))
def test_each_stage_of_a_function(stage):
    x = llgrad.ones(64, 64, requires_grad=True)
    text = llgrad.debug.dump(step, x, stage=stage)
    assert text.startswith("// llgrad program ") or text.startswith(("; llgrad program", "# llgrad program"))
    assert f"· stage {stage}" in text.splitlines()[0]
    assert "inputs: in0 64x64xf32" in text and "compiled in" in text
    for marker in STAGE_MARKERS[stage]:
        assert marker in text, (stage, marker)


def test_dump_of_a_tensor_shows_the_pending_program_without_running_it():
    x = llgrad.ones(3, 5)
    out = (x.exp() * 3).sum(dim=1)
    runs = llgrad.runtime.stats()["runs"]
    text = llgrad.debug.dump(out, stage="optimized,kernels")
    assert llgrad.runtime.stats()["runs"] == runs
    assert text.count("// llgrad program ") == 2
    assert "@exp_" not in text and "@fused_exp_mul_sum_3x5(" in text  # the kernel says what it is


def test_source_locations_point_at_the_users_line():
    x = llgrad.ones(4, 4)
    line = _line() + 1
    y = x.tanh() * 5
    text = llgrad.debug.dump(y, stage="forward")
    here = os.path.relpath(__file__) if not os.path.relpath(__file__).startswith("..") else __file__
    assert f'loc("{here}":{line}:9)' in text  # column of `x.tanh() * 5`, 1-based
    assert f"// {here}:{line}  y = x.tanh() * 5" in text
    assert "math.tanh" in text and "arith.mulf" in text


def test_dead_values_are_dropped_and_names_are_short():
    x = llgrad.ones(8)
    a = x + 1
    a * 100  # dropped at once: not part of the program (a tensor still holding it would be)
    out = a.sum()
    text = llgrad.debug.dump(out, stage="forward")
    assert "arith.mulf" not in text and "arith.addf" in text
    assert "%in0: tensor<8xf32>" in text and "%0 = linalg.generic" in text


def test_backward_ops_are_marked():
    x = llgrad.ones(2, 3, requires_grad=True)
    (g,) = llgrad.debug.trace_grad((x * x).sum(), x)
    text = llgrad.debug.dump([g], stage="optimized")
    generic_lines = [ln for ln in text.splitlines() if "linalg.generic" in ln]
    assert generic_lines and any("llgrad.backward" in ln for ln in generic_lines)


def test_dumping_writes_one_file_per_stage_per_program(tmp_path):
    x = llgrad.ones(5, 7, requires_grad=True)
    with llgrad.debug.dumping("all", dir=str(tmp_path)):
        ((x * 1.5).sigmoid().sum() + x.shape[0]).backward()
    files = sorted(p.name for p in tmp_path.iterdir())
    hashes = {name.split(".")[0] for name in files}
    assert len(hashes) == 1
    h = hashes.pop()
    for suffix in dump_module.SUFFIX.values():
        assert f"{h}.{suffix}" in files
    assert (tmp_path / f"{h}.s").read_text().startswith("# llgrad program")
    assert "define" in (tmp_path / f"{h}.llvm.ll").read_text()


def test_dumping_prints_selected_stages_to_a_stream():
    x = llgrad.ones(9)
    stream = io.StringIO()
    with llgrad.debug.dumping("kernels,llvm", stream=stream):
        (x * 2.25 - 7).numpy()
    out = stream.getvalue()
    assert "· stage kernels" in out and "· stage llvm" in out and "· stage asm" not in out
    with llgrad.debug.dumping("asm", stream=stream):
        pass
    assert stream.getvalue() == out  # nothing compiled, nothing dumped


def test_unknown_stage_is_an_error():
    with pytest.raises(ValueError, match="unknown dump stage 'mlir'"):
        llgrad.debug.dump(llgrad.ones(2) + 1, stage="mlir")


def test_already_computed_tensors_have_nothing_to_dump():
    y = llgrad.ones(2) + 1
    y.numpy()
    with pytest.raises(ValueError, match="already computed"):
        llgrad.debug.dump(y)


def test_environment_variables(tmp_path):
    script = "import llgrad\nx = llgrad.ones(6, 6)\nprint((x * 3).sum().item())\n"
    env = dict(os.environ, LLGRAD_DUMP="forward,kernels", LLGRAD_LOG="compile", LLGRAD_CACHE="0")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "108.0"
    assert "· stage forward" in done.stderr and "· stage kernels" in done.stderr
    assert "llgrad: compiled llgrad_" in done.stderr and "new graph" in done.stderr
    env = dict(os.environ, LLGRAD_DUMP_DIR=str(tmp_path), LLGRAD_CACHE="0")
    env.pop("LLGRAD_DUMP", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert len(list(pathlib.Path(tmp_path).glob("*.forward.mlir"))) == 1
    assert len(list(pathlib.Path(tmp_path).glob("*.s"))) == 1


def test_recording_locations_can_be_turned_off():
    x = llgrad.ones(3)
    try:
        llgrad.debug.record_locations(False)
        y = x.exp() + 1
    finally:
        llgrad.debug.record_locations(True)
    z = y * 2
    assert y._node.loc is None and z._node.loc is not None
    text = llgrad.debug.dump(z, stage="forward")
    line = _line() - 3  # of `z = y * 2`
    assert f":{line}:" in text and "math.exp" in text  # unlocated ops show the line that reads them


def test_graph_text_is_compact_by_default_and_mlir_on_request():
    x = llgrad.ones(2, 2, requires_grad=True)
    y = x + 2  # the line the text points at
    line = _line() - 1
    out = (y * y * 3).mean()
    text = llgrad.debug.graph_text(out)
    lines = text.splitlines()
    assert lines[0] == "{ lambda in0:f32[2,2] ; p0:i64=2 p1:i64=3 ."
    assert lines[1].startswith("  let %0:f32[2,2] = add in0 p0") and f"test_debug_dump.py:{line}" in lines[1]
    assert "%3:f32[] = mean[dims=None keepdim=False] %2" in text and lines[-1] == "  in ( %3 ) }"
    (g,) = llgrad.debug.trace_grad(out, x)
    assert "backward" in llgrad.debug.graph_text(g)
    mlir = llgrad.debug.graph_text(out, form="mlir")
    assert "linalg.generic" in mlir and "func.func" in mlir

"""Cache misses explained: each compile is logged with its reason (LLGRAD_LOG=compile) and
counted by kind in llgrad.runtime.stats()["compile_reasons"]."""

from __future__ import annotations

import io

import llgrad
import pytest
from llgrad.runtime import compile_log, executor


@pytest.fixture
def log():
    compile_log.forget()  # reasons compare with earlier compiles: start from none
    stream = io.StringIO()
    compile_log.set_log_stream(stream)
    yield stream
    compile_log.set_log_stream(None)


def _lines(stream) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line.startswith("llgrad: compiled")]


def _reasons() -> dict:
    return llgrad.runtime.stats()["compile_reasons"]


def layer(batch: int, dtype=llgrad.float32):
    x = llgrad.ones(batch, 784, dtype=dtype)
    w = llgrad.ones(784, 10, dtype=dtype)
    return (x @ w).relu().sum().item()


def test_shape_change_names_the_input_and_both_shapes(log):
    before = _reasons().get("shape", 0)
    layer(128)
    layer(64)
    first, second = _lines(log)
    assert "new graph" in first
    assert "shape of input 0 changed from (128, 784) to (64, 784)" in second
    assert "nearest cached: llgrad_" in second
    assert _reasons()["shape"] == before + 1


def test_dtype_and_attribute_changes(log):
    layer(32)
    layer(32, dtype=llgrad.float64)
    x = llgrad.ones(3, 4)
    x.sum(dim=0).numpy()
    x.sum(dim=1).numpy()
    lines = _lines(log)
    assert "dtype of input 0 changed from float32 to float64" in lines[1]
    assert "dims of op 1 (sum) changed from (0,) to (1,)" in lines[3]


def test_cache_hits_are_not_compiles_and_evicted_programs_say_so(log):
    layer(16)
    layer(16)
    assert len(_lines(log)) == 1
    executor.clear_memory_cache()
    layer(16)
    lines = _lines(log)
    assert len(lines) == 2 and "same graph as llgrad_" in lines[1] and "dropped from the cache" in lines[1]
    assert _reasons().get("evicted", 0) >= 1


def test_llgrad_log_environment_variable(monkeypatch, capsys):
    compile_log.forget()
    monkeypatch.setenv("LLGRAD_LOG", "compile")
    (llgrad.ones(5) * 13.5).numpy()
    err = capsys.readouterr().err
    assert err.startswith("llgrad: compiled llgrad_") and " ms: new graph" in err
    monkeypatch.setenv("LLGRAD_LOG", "")
    (llgrad.ones(6) * 13.5).numpy()
    assert capsys.readouterr().err == ""


def test_reason_kinds_are_counted_in_stats():
    stats = llgrad.runtime.stats()
    assert isinstance(stats["compile_reasons"], dict)
    assert sum(stats["compile_reasons"].values()) <= stats["compiles"]
    assert set(stats["compile_reasons"]) <= set(compile_log.KINDS)

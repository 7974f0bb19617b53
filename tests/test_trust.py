"""What llgrad reads from outside (disk cache entries, the compile helper's replies) is checked
against what it claims to be before it is linked; anything else is a miss, never a hang or
an error out of a computation."""

import warnings

import llgrad
import numpy as np
import pytest
from llgrad.runtime import compile_worker, diskcache, executor, gemm_library
from llgrad.runtime.diskcache import CacheWarning
from llgrad.runtime.plan import Plan


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("LLGRAD_CACHE", "1")
    monkeypatch.setenv("LLGRAD_CACHE_DIR", str(root))
    executor.clear_memory_cache()
    monkeypatch.setattr(gemm_library, "_object", [None])
    yield root
    executor.clear_memory_cache()


def cache_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def matmul_value() -> np.ndarray:
    a, b = np.arange(48.0 * 40).reshape(48, 40) / 1e3, np.arange(40.0 * 36).reshape(40, 36) / 1e3
    got = (llgrad.tensor(a) @ llgrad.tensor(b)).numpy()
    np.testing.assert_allclose(got, a @ b)
    assert gemm_library.needed_by(executor.last_program().object_code)  # large enough for the library
    return got


def test_a_gemm_library_entry_holding_other_code_is_discarded(cache_dir):
    # The helper once stored another program's object code as the GEMM library: every later
    # process failed on any matmul until the cache was cleared.
    (llgrad.arange(5.0).exp() * 2).sum().item()
    foreign = executor.last_program().object_code
    disk = diskcache.current()
    disk.put(diskcache.key_text(gemm_library._KEY), Plan("llgrad_gemm_library", (), (), ()), foreign)
    gemm_library._object[0] = None
    _, warned = cache_warnings(matmul_value)
    assert any("not the GEMM library" in w for w in warned), warned
    gemm_library._object[0] = None  # a fresh process now loads the recompiled library
    executor.clear_memory_cache()
    _, warned = cache_warnings(matmul_value)
    assert not warned


def test_a_reply_to_another_request_is_refused(monkeypatch):
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "1")
    monkeypatch.setattr(compile_worker, "_broken", False)
    compile_worker._shutdown()
    assert (llgrad.arange(4.0) * 3).sum().item() == 18.0  # starts the helper
    worker = compile_worker._worker
    # A request whose reply nobody reads: the next reply in the pipe answers it, not ours.
    stray = b"; an empty module\n"
    worker.proc.stdin.write(compile_worker._REQUEST.pack(10**6, len(stray)) + stray)
    with pytest.warns(RuntimeWarning, match="answered request 1000000"):
        value = (llgrad.arange(4.0).sin() * 3).sum().item()
    assert value == pytest.approx(float((np.sin(np.arange(4.0)) * 3).sum()), rel=1e-6)
    assert compile_worker._worker is None  # that helper is gone; compiling here from now on

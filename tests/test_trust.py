"""What llgrad reads from outside (disk cache entries, the compile helper's replies) is checked
against what it claims to be before it is linked; anything else is a miss, never a hang or
an error out of a computation."""

import os
import stat
import threading
import time
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
    assert executor.last_program().plan.gemm  # large enough for the library
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
    worker.proc.stdin.write(compile_worker._REQUEST.pack(10**6, len(stray), True) + stray)
    with pytest.warns(RuntimeWarning, match="answered request 1000000"):
        value = (llgrad.arange(4.0).sin() * 3).sum().item()
    assert value == pytest.approx(float((np.sin(np.arange(4.0)) * 3).sum()), rel=1e-6)
    assert compile_worker._worker is None  # that helper is gone; compiling here from now on


# -- disk cache entries that are not regular files ----------------------------------------------


def small_graph() -> float:
    x = llgrad.arange(6.0)
    return ((x * 0.5 + 1).tanh() * x).sum().item()


SMALL_WANT = float((np.tanh(np.arange(6.0) * 0.5 + 1) * np.arange(6.0)).sum())


def entry_path(root, kind: str):
    """The disk cache entry of the program ("program") or of its one kernel ("kernel")."""
    def is_kernel(p) -> bool:
        return diskcache._unpack(p.read_bytes())[0]["key"].startswith("llgrad-kernel ")

    found = [p for p in root.glob("*.llgc") if is_kernel(p) == (kind == "kernel")]
    (path,) = found
    return path


def compute_with_timeout(fn, seconds: float, unblock):
    """fn() in a thread; fail (after `unblock()` frees it) if it does not finish in time."""
    result, errors = [], []

    def body():
        try:
            result.append(fn())
        except BaseException as e:  # noqa: B036  (re-raised below)
            errors.append(e)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        thread.join(10)
        pytest.fail(f"the computation hung on the cache entry for {seconds} s")
    if errors:
        raise errors[0]
    return result[0]


@pytest.mark.filterwarnings("ignore::llgrad.runtime.diskcache.CacheWarning")
@pytest.mark.parametrize("kind", ["program", "kernel"])
def test_a_fifo_in_place_of_an_entry_is_a_miss_not_a_hang(cache_dir, kind):
    assert small_graph() == pytest.approx(SMALL_WANT, rel=1e-6)
    path = entry_path(cache_dir, kind)
    path.unlink()
    os.mkfifo(path, 0o600)
    executor.clear_memory_cache()

    def unblock():
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    value = compute_with_timeout(small_graph, 20, unblock)
    assert value == pytest.approx(SMALL_WANT, rel=1e-6)


@pytest.mark.parametrize("kind", ["program", "kernel"])
def test_a_directory_in_place_of_an_entry_is_a_miss(cache_dir, kind):
    assert small_graph() == pytest.approx(SMALL_WANT, rel=1e-6)
    path = entry_path(cache_dir, kind)
    path.unlink()
    path.mkdir(mode=0o700)
    for _ in range(2):  # it raised IsADirectoryError out of every computation of this program
        executor.clear_memory_cache()
        value, warned = cache_warnings(small_graph)
        assert value == pytest.approx(SMALL_WANT, rel=1e-6)
        assert any("not a regular file" in w for w in warned), warned
    assert stat.S_ISDIR(os.lstat(path).st_mode)  # not ours to remove


def test_eviction_passes_over_entries_that_are_not_files(cache_dir, monkeypatch):
    assert small_graph() == pytest.approx(SMALL_WANT, rel=1e-6)
    odd = cache_dir / ("0" * 64 + ".llgc")
    odd.mkdir(mode=0o700)
    time.sleep(0.01)
    for i in range(3):  # entries newer than the odd one
        assert (llgrad.arange(float(7 + i)) * 2).sum().item() == sum(range(7 + i)) * 2
    monkeypatch.setenv("LLGRAD_CACHE_MAX_MB", "0")
    diskcache.current().evict()
    assert [p for p in cache_dir.glob("*.llgc") if p.is_file()] == []

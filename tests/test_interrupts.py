"""A Ctrl-C at any stage of a computation leaves llgrad consistent: the next computation is
right, and the disk cache holds only valid entries.

A real SIGINT is sent to the main thread (Python's default handler raises KeyboardInterrupt
at the next bytecode), either from inside a stage (the stage's function is wrapped so that
the signal arrives as it starts or just after it returns) or from a timer thread while the
stage runs (native code, a helper process).
"""

import contextlib
import random
import signal
import threading
import time
import warnings

import llgrad
import numpy as np
import pytest
from llgrad.runtime import compile_worker, diskcache, executor, gemm_library, jit, threads
from llgrad.runtime.diskcache import CacheWarning

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signals reach the main thread only")


def send_sigint() -> None:
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


@contextlib.contextmanager
def default_sigint():
    """Python's own SIGINT handler (KeyboardInterrupt), whatever the test runner installed."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def interrupt_after(seconds: float):
    """SIGINT the main thread `seconds` from now (a Ctrl-C typed then)."""
    timer = threading.Timer(seconds, send_sigint)
    with default_sigint():
        timer.start()
        try:
            yield
        finally:
            timer.join()
            time.sleep(0.01)  # a signal sent just as the block ended is handled in here, not later


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A disk cache of its own, empty; nothing in memory (the GEMM library included)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("LLGRAD_CACHE", "1")
    monkeypatch.setenv("LLGRAD_CACHE_DIR", str(root))
    executor.clear_memory_cache()
    monkeypatch.setattr(gemm_library, "_object", [None])
    yield root
    executor.clear_memory_cache()


def assert_disk_cache_valid(root, recompute) -> None:
    """Every file in the cache is a whole entry, and `recompute()` (which checks its values)
    runs from it as a fresh process would: loaded, nothing compiled, nothing discarded."""
    for path in root.glob("*.llgc"):
        diskcache._unpack(path.read_bytes())  # raises on a torn or corrupt entry
    executor.clear_memory_cache()
    gemm_library._object[0] = None
    before, compiled = executor.stats(), compile_worker.counts()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recompute()
    assert not [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert executor.stats()["compiles"] == before["compiles"]
    now = compile_worker.counts()
    assert now["in_process"] + now["in_helper"] == compiled["in_process"] + compiled["in_helper"]
    assert executor.stats()["disk_loads"] > before["disk_loads"]


@pytest.fixture
def two_threads(monkeypatch):
    """A worker pool of at least two threads, even on a one-core machine."""
    if threads.pool() is None:
        monkeypatch.setattr(threads, "_pool", threads._Pool(2))
    return threads.pool()


# -- the native run on two threads ---------------------------------------------------------


def _two_kernel_rows(a: llgrad.Tensor, k: float) -> np.ndarray:
    """A row reduction, then its broadcast: two kernels with a barrier between them."""
    t = (a * k).tanh()
    return (t - t.sum(1, keepdim=True)).numpy()


def _rows_reference(a: np.ndarray, k: float) -> np.ndarray:
    t = np.tanh(a * k)
    return t - t.sum(1, keepdims=True)


def test_interrupt_while_workers_run_does_not_corrupt_the_next_run(two_threads, cache_dir):
    # Worker threads are slowed down (a sleep before their share) so that the Ctrl-C
    # certainly arrives while thread 0 waits for them: the next run must still wait for
    # its own workers, not take the interrupted run's finish for its own.
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((1024, 1024)).astype(np.float32)
    a = llgrad.tensor(a_np)
    (a * 1.0).tanh().numpy()
    prog = executor.last_program()
    assert prog._fn_mt is not None, "the program must be large enough to run on the pool"
    native = prog._fn_mt

    def slow_workers(bufs, params, tid, n, barrier):
        if tid:
            time.sleep(0.3)
        native(bufs, params, tid, n, barrier)

    prog._fn_mt = slow_workers
    try:
        with pytest.raises(KeyboardInterrupt), interrupt_after(0.1):
            (a * 0.5).tanh().numpy()
        got = (a * 0.25).tanh().numpy()
    finally:
        prog._fn_mt = native
    np.testing.assert_allclose(got, np.tanh(a_np * 0.25), rtol=1e-5, atol=1e-6)
    assert two_threads.busy.acquire(timeout=5), "the pool stays busy after the interrupted run"
    two_threads.busy.release()

    def recompute():
        np.testing.assert_allclose((a * 0.75).tanh().numpy(), np.tanh(a_np * 0.75), rtol=1e-5, atol=1e-6)

    assert_disk_cache_valid(cache_dir, recompute)


def test_interrupts_at_random_points_of_threaded_runs(two_threads):
    rng = np.random.default_rng(1)
    a_np = rng.standard_normal((2048, 1024)).astype(np.float32)
    a = llgrad.tensor(a_np)
    _two_kernel_rows(a, 1.0)
    start = time.perf_counter()
    _two_kernel_rows(a, 0.5)
    seconds = time.perf_counter() - start
    chance = random.Random(2)
    for attempt in range(25):
        k = 0.1 + attempt * 0.03
        with contextlib.suppress(KeyboardInterrupt), interrupt_after(chance.uniform(0, seconds)):
            _two_kernel_rows(a, 2.0)
        np.testing.assert_allclose(_two_kernel_rows(a, k), _rows_reference(a_np, k), rtol=1e-4, atol=1e-3)


# -- the helper-process compile ------------------------------------------------------------


class _InterruptAfterFlush:
    """The helper's stdin: a Ctrl-C arrives just after a request is sent, before its reply."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._armed = True

    def write(self, data):
        return self._stream.write(data)

    def flush(self):
        self._stream.flush()
        if self._armed:  # once
            self._armed = False
            signal.raise_signal(signal.SIGINT)

    def close(self):
        self._stream.close()

    def fileno(self):
        return self._stream.fileno()


def _distinct(i: int) -> float:
    """A graph whose structure depends on i (each i compiles a program of its own)."""
    x = llgrad.arange(float(3 + i))
    return ((x * 0.25).tanh() + i).sum().item()


def _distinct_reference(i: int) -> float:
    x = np.arange(float(3 + i))
    return float((np.tanh(x * 0.25) + i).sum())


@pytest.fixture
def helper_compiles(monkeypatch, cache_dir):
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "1")
    monkeypatch.setattr(compile_worker, "_broken", False)
    compile_worker._shutdown()
    yield
    compile_worker._shutdown()


def test_interrupt_while_the_helper_compiles_does_not_shift_its_replies(helper_compiles, cache_dir):
    # The reply to the interrupted request stayed in the pipe: every later compile received
    # the previous request's object code ("Symbols not found"), and with the disk cache on,
    # the GEMM library was stored as another program's object.
    assert _distinct(1) == pytest.approx(_distinct_reference(1), rel=1e-6)  # the helper runs
    worker = compile_worker._worker
    worker.proc.stdin = _InterruptAfterFlush(worker.proc.stdin)
    with default_sigint(), pytest.raises(KeyboardInterrupt):
        _distinct(2)
    gemm_library._object[0] = None  # the next matmul compiles the library (through the helper)

    def recompute():
        for i in (2, 3):
            assert _distinct(i) == pytest.approx(_distinct_reference(i), rel=1e-6)
        a, b = np.arange(48.0 * 40).reshape(48, 40) / 1e3, np.arange(40.0 * 36).reshape(40, 36) / 1e3
        np.testing.assert_allclose((llgrad.tensor(a) @ llgrad.tensor(b)).numpy(), a @ b)

    recompute()
    assert_disk_cache_valid(cache_dir, recompute)


# -- every stage of a computation: recording, scheduling, codegen, LLVM, link ----------------


A = np.linspace(-1.0, 1.0, 48 * 40, dtype=np.float32).reshape(48, 40)
B = np.cos(np.arange(40 * 36, dtype=np.float32)).reshape(40, 36) / 8


def forward_backward(scale: float) -> tuple:
    """A matmul (the GEMM library), elementwise ops, a reduction, and their backward."""
    a = llgrad.tensor(A, requires_grad=True)
    loss = ((a @ llgrad.tensor(B)).tanh() * scale).sum()
    loss.backward()
    return loss.item(), a.grad.numpy()


def check_forward_backward(scale: float) -> None:
    value, grad = forward_backward(scale)
    t = np.tanh(A.astype(np.float64) @ B)
    assert value == pytest.approx(float((t * scale).sum()), rel=1e-4)
    np.testing.assert_allclose(grad, (scale * (1 - t * t)) @ B.T, rtol=1e-4, atol=1e-5)


def other_graph() -> None:
    want = float((np.exp(np.arange(10.0) * 0.3) - 1).sum())
    assert ((llgrad.arange(10.0) * 0.3).exp() - 1).sum().item() == pytest.approx(want, rel=1e-5)


def _stage_targets():
    from llgrad.compiler import codegen
    from llgrad.runtime import pending

    return {
        "recording": (pending.Segment, "record"),
        "scheduling": (executor, "schedule"),
        "codegen": (codegen, "build_kernel_module"),
        "LLVM optimization": (jit._JIT, "optimize"),
        "LLVM code emission": (jit._JIT, "emit_object"),
        "link": (jit._JIT, "load_many"),
    }


@pytest.mark.parametrize("when", ["entering", "leaving"])
@pytest.mark.parametrize("stage", ["recording", "scheduling", "codegen", "LLVM optimization",
                                   "LLVM code emission", "link"])
def test_interrupt_at_a_stage_leaves_the_next_computation_right(stage, when, cache_dir, monkeypatch):
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "0")  # LLVM runs in this process
    owner, name = _stage_targets()[stage]
    real = getattr(owner, name)
    fired = []

    def interrupted(*args, **kwargs):
        if not fired:  # once: a Ctrl-C typed as the stage starts, or just as it returns
            fired.append(stage)
            if when == "entering":
                signal.raise_signal(signal.SIGINT)
                return real(*args, **kwargs)
            out = real(*args, **kwargs)
            signal.raise_signal(signal.SIGINT)
            return out
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupted)
    with default_sigint(), pytest.raises(KeyboardInterrupt):
        forward_backward(0.5)
    assert fired
    from llgrad import dispatch

    assert dispatch.backward_depth() == 0 and llgrad.is_grad_enabled()
    check_forward_backward(0.5)
    check_forward_backward(0.25)
    other_graph()

    def recompute():
        check_forward_backward(0.75)
        other_graph()

    assert_disk_cache_valid(cache_dir, recompute)


class _InterruptOnRegister(dict):
    """The program cache's table of programs being built: a Ctrl-C just as one is registered."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if not getattr(self, "fired", False):
            self.fired = True
            signal.raise_signal(signal.SIGINT)


def test_interrupt_as_a_build_is_registered_does_not_hang_the_next_lookup(monkeypatch):
    # A program registered as being built, by a thread then interrupted before its build began,
    # made every later computation of that graph wait forever for it.
    monkeypatch.setattr(executor, "_building", _InterruptOnRegister())
    executor.clear_memory_cache()
    with default_sigint(), pytest.raises(KeyboardInterrupt):
        other_graph()
    done = threading.Event()

    def again():
        other_graph()
        done.set()

    threading.Thread(target=again, daemon=True).start()
    assert done.wait(60), "the next computation of the graph waited forever"
    assert not executor._building

"""Threads: different graphs run concurrently with correct results, and compiling is safe
from any thread (the program cache, counters, LLVM linking and disk writes included)."""

import threading

import llgrad
import numpy as np
import pytest
from llgrad.runtime import executor


def run_threads(fns: list) -> list:
    """Run each fn in its own thread, started together; their results (or raise the first error)."""
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)
    errors: list = []

    def body(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except BaseException as e:  # noqa: B036  (re-raised in the main thread)
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def test_two_threads_run_different_graphs_concurrently():
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal(200_000).astype(np.float32)
    b_np = rng.standard_normal((300, 500)).astype(np.float32)
    a, b = llgrad.tensor(a_np), llgrad.tensor(b_np)

    def chain():  # a first-time compile racing the other thread's, then cached runs
        out = []
        for i in range(30):
            out.append(((a * (1 + i * 0.01)).tanh() * a).sum().item())
        return out

    def rows():
        out = []
        for i in range(30):
            out.append((b.exp() * (i + 1)).sum(dim=1).max().item())
        return out

    got_chain, got_rows = run_threads([chain, rows])
    want_chain = [float((np.tanh(a_np * (1 + i * 0.01)) * a_np).sum(dtype=np.float64)) for i in range(30)]
    want_rows = [float((np.exp(b_np) * (i + 1)).sum(axis=1).max()) for i in range(30)]
    np.testing.assert_allclose(got_chain, want_chain, rtol=1e-4)
    np.testing.assert_allclose(got_rows, want_rows, rtol=1e-4)


def test_training_in_two_threads_matches_training_in_one():
    def train(seed):
        rng = np.random.default_rng(seed)
        w = llgrad.tensor(rng.standard_normal((8, 4)).astype(np.float32), requires_grad=True)
        b = llgrad.zeros(4, requires_grad=True)
        x = llgrad.tensor(rng.standard_normal((16, 8)).astype(np.float32))
        y = llgrad.tensor(rng.standard_normal((16, 4)).astype(np.float32))

        def run():
            losses = []
            for _ in range(25):
                loss = ((x @ w + b - y) ** 2).mean()
                loss.backward()
                with llgrad.no_grad():
                    for p in (w, b):
                        p -= 0.05 * p.grad
                        p.grad = None
                losses.append(loss.item())
            return losses
        return run

    alone = [train(1)(), train(2)()]
    together = run_threads([train(1), train(2)])
    assert together == alone  # the same programs on the same data: bit for bit


def test_compiling_from_many_threads_builds_each_program_once():
    n_threads = 6
    before = executor.stats()

    def work(t):
        def run():
            shared = (llgrad.arange(777.0) * 0.5 + 1).sigmoid().sum().item()  # same graph everywhere
            own = (llgrad.arange(float(600 + t)) * 0.01).exp().mean().item()  # one graph per thread
            return shared, own
        return run

    results = run_threads([work(t) for t in range(n_threads)])
    x = np.arange(777.0)
    for t, (shared, own) in enumerate(results):
        assert shared == pytest.approx((1 / (1 + np.exp(-(x * 0.5 + 1)))).sum(), rel=1e-5)
        assert own == pytest.approx(np.exp(np.arange(600.0 + t) * 0.01).mean(), rel=1e-4)
    after = executor.stats()
    # Threads that asked for the shared graph while one compiled it waited for that program.
    assert after["compiles"] - before["compiles"] == n_threads + 1
    assert after["runs"] - before["runs"] == 2 * n_threads


def test_threads_compiling_with_the_disk_cache_leave_valid_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("LLGRAD_CACHE", "1")
    monkeypatch.setenv("LLGRAD_CACHE_DIR", str(tmp_path / "cache"))
    executor.clear_memory_cache()

    def compute(n, scale):
        return (llgrad.ones(n) * scale).tanh().sum().item()

    def work(t):
        return lambda: [compute(50 + t % 3, float(t)) for _ in range(3)]

    results = run_threads([work(t) for t in range(6)])
    for t, values in enumerate(results):
        assert values == [pytest.approx(np.tanh(float(t)) * (50 + t % 3), rel=1e-5)] * 3
    assert len(list((tmp_path / "cache").glob("*.llgc"))) == 6  # three programs and their kernels
    executor.clear_memory_cache()  # a fresh start loads all three
    before = executor.stats()
    values = [compute(50 + t, 2.0) for t in range(3)]
    assert values == [pytest.approx(np.tanh(2.0) * (50 + t), rel=1e-5) for t in range(3)]
    assert executor.stats()["disk_loads"] - before["disk_loads"] == 3
    executor.clear_memory_cache()


def test_threads_sharing_weights_and_evicting_programs(monkeypatch):
    monkeypatch.setenv("LLGRAD_MAX_PROGRAMS", "2")  # programs are dropped while others run
    executor.clear_memory_cache()
    w_np = np.linspace(-1, 1, 64, dtype=np.float32)
    w = llgrad.tensor(w_np)

    def work(t):
        def run():
            return [((w * (k + 1)) ** (1 + t % 3)).sum().item() for k in range(8)]
        return run

    results = run_threads([work(t) for t in range(4)])
    for t, values in enumerate(results):
        want = [float(((w_np.astype(np.float64) * (k + 1)) ** (1 + t % 3)).sum()) for k in range(8)]
        np.testing.assert_allclose(values, want, rtol=1e-4, atol=1e-4)
    assert executor.stats()["cached_programs"] <= 2
    executor.clear_memory_cache()


def test_one_thread_tracing_a_compiled_step_does_not_capture_another_threads_values():
    collected: list = []
    tracing, finish = threading.Event(), threading.Event()

    def tracer():  # what llgrad.compile does while it traces a step
        executor.set_deferral(collected.extend)
        try:
            tracing.set()
            finish.wait(60)
        finally:
            executor.set_deferral(None)

    t = threading.Thread(target=tracer)
    t.start()
    tracing.wait(60)
    try:
        value = (llgrad.arange(5.0) * 2).sum().item()
    finally:
        finish.set()
        t.join()
    assert value == 20.0 and collected == []

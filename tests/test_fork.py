"""A process forked after llgrad started its threads (multiprocessing's default start method
on Linux, DataLoader workers) computes correctly: cached programs, new compiles, threaded runs,
the compile helper process."""

import multiprocessing
import os
import pickle
import select
import signal
import sys
import threading
import time

import llgrad
import numpy as np
import pytest
from llgrad.runtime import compile_worker, threads
from llgrad.runtime import program as program_module

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                                reason="fork() start method (Linux)")


def large_sum(scale: float) -> float:
    """Runs on the worker pool: 512x512 is above the threading threshold."""
    return (llgrad.ones(512, 512) * scale).sum().item()


def in_child(fn, timeout: float = 60.0):
    """fn() in a forked child; its result, or fail if the child hangs or dies."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running the parent's cleanup
        code = 0
        try:
            os.close(read)
            payload = pickle.dumps(("ok", fn()))
        except BaseException as e:  # noqa: B036  (reported to the parent)
            payload, code = pickle.dumps(("error", repr(e))), 1
        with os.fdopen(write, "wb") as f:
            f.write(payload)
        os._exit(code)
    os.close(write)
    deadline, chunks = time.monotonic() + timeout, []
    with os.fdopen(read, "rb", buffering=0) as f:
        while True:  # read as the child writes (a result larger than the pipe's buffer)
            ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the forked child hung for {timeout} s")
            chunk = f.read(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    assert data, f"the child died (wait status {status})"
    kind, value = pickle.loads(data)
    assert kind == "ok", value
    return value


@pytest.fixture
def started_pool():
    assert large_sum(2.0) == 512 * 512 * 2
    if threads.pool() is None:
        pytest.skip("one CPU: no worker pool to lose in the fork")
    return threads.pool()


def test_child_runs_a_cached_threaded_program(started_pool):
    assert in_child(lambda: large_sum(3.0)) == 512 * 512 * 3


def test_child_compiles_and_runs_new_programs(started_pool):
    def work():
        x = llgrad.tensor(np.arange(512 * 512, dtype=np.float32).reshape(512, 512) / 1e5, requires_grad=True)
        (x.tanh() * x).sum().backward()
        return x.grad.numpy()

    got = in_child(work)
    x = np.arange(512 * 512, dtype=np.float32).reshape(512, 512) / 1e5
    want = np.tanh(x) + x * (1 - np.tanh(x) ** 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert large_sum(5.0) == 512 * 512 * 5  # and the parent still computes


def test_child_compiles_in_its_own_helper_process(started_pool, monkeypatch):
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "1")
    x = llgrad.arange(7.0)
    assert (x.exp() + 1).sum().item() == pytest.approx(float((np.exp(np.arange(7.0)) + 1).sum()), rel=1e-6)
    assert compile_worker._worker is not None  # the parent's helper is running

    def work():
        y = llgrad.arange(9.0)
        value = (y.sin() * 3).sum().item()
        return value, compile_worker.counts()["helpers_started"]

    value, started = in_child(work)
    assert value == pytest.approx(float((np.sin(np.arange(9.0)) * 3).sum()), rel=1e-6)
    assert started >= 1


def test_child_forked_while_a_thread_compiles_the_same_graph(started_pool, monkeypatch):
    # The thread is halfway through building the program when the process forks: the child,
    # where that thread does not exist, must build it itself, not wait for it forever.
    entered = threading.Event()
    compile_object = program_module.compile_object

    def slow_compile(ir_text, **options):
        entered.set()
        time.sleep(0.3)
        return compile_object(ir_text, **options)

    monkeypatch.setattr(program_module, "compile_object", slow_compile)

    def graph():
        return (llgrad.arange(11.0).cos() * 5).sum().item()

    want = float((np.cos(np.arange(11.0)) * 5).sum())
    other = threading.Thread(target=graph)
    other.start()
    assert entered.wait(60)
    try:
        assert in_child(graph) == pytest.approx(want, rel=1e-6)
    finally:
        other.join()
    assert graph() == pytest.approx(want, rel=1e-6)


def _mp_large_sum(scale):
    return large_sum(scale)


def test_multiprocessing_fork_pool(started_pool):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as workers:
        result = workers.map_async(_mp_large_sum, [1.0, 4.0])
        assert result.get(timeout=120) == [512 * 512 * 1.0, 512 * 512 * 4.0]

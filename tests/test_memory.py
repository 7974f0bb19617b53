"""Bounded memory: what users drop is freed, programs in memory are bounded, and a training
loop neither grows its graph nor its resident memory.

The long runs (10,000 steps, 2,000 distinct graphs) are marked slow: `pytest -m slow`.
"""

import gc
import weakref

import llgrad
import numpy as np
import pytest
from llgrad.compiler.signature import canonicalize
from llgrad.runtime import compile_worker, executor
from llgrad.runtime import jit as jit_module
from llgrad.runtime.program import Program


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class TinyMLP:
    """A 32 -> 64 -> 10 ReLU MLP with cross-entropy and an in-place SGD update."""

    def __init__(self, seed: int = 0, batch: int = 16) -> None:
        rng = np.random.default_rng(seed)

        def param(*shape):
            return llgrad.tensor(rng.standard_normal(shape).astype(np.float32) * 0.1, requires_grad=True)

        self.params = [param(32, 64), param(64), param(64, 10), param(10)]
        self.x = llgrad.tensor(rng.standard_normal((batch, 32)).astype(np.float32))
        onehot = np.zeros((batch, 10), np.float32)
        onehot[np.arange(batch), rng.integers(0, 10, batch)] = 1
        self.y = llgrad.tensor(onehot)
        self.batch = batch

    def step(self, lr: float = 0.05) -> float:
        w1, b1, w2, b2 = self.params
        h = (self.x @ w1 + b1).relu()
        z = h @ w2 + b2
        m = z.max(dim=1, keepdim=True)[0]
        lse = (z - m).exp().sum(dim=1, keepdim=True).log() + m
        loss = -((z - lse) * self.y).sum() / self.batch
        loss.backward()
        with llgrad.no_grad():
            for p in self.params:
                p -= lr * p.grad
                p.grad = None
        return loss.item()


class Linear:
    """x @ w + b with a squared error and an in-place SGD update: quick to compile."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.params = [llgrad.tensor(rng.standard_normal((8, 4)).astype(np.float32), requires_grad=True),
                       llgrad.zeros(4, requires_grad=True)]
        self.x = llgrad.tensor(rng.standard_normal((16, 8)).astype(np.float32))
        self.y = llgrad.tensor(rng.standard_normal((16, 4)).astype(np.float32))

    def step(self, lr: float = 0.05) -> float:
        w, b = self.params
        loss = ((self.x @ w + b - self.y) ** 2).mean()
        loss.backward()
        with llgrad.no_grad():
            for p in self.params:
                p -= lr * p.grad
                p.grad = None
        return loss.item()


@pytest.fixture(scope="module")
def linear():
    model = Linear()
    for _ in range(3):  # the first steps differ (no pending update yet)
        model.step()
    return model


def distinct_graph(i: int) -> float:
    """Graph number i: a structure of its own (its length decides the shape)."""
    v = llgrad.ones(1 + i) * 2
    for k in range(i % 3):
        v = v.tanh() if k % 2 else v.sigmoid()
    return v.sum().item()


def live_programs() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Program)


# -- graphs stay small, programs stay few ---------------------------------------------------


def test_training_loop_compiles_once_and_its_graph_does_not_grow(linear):
    compiles = executor.stats()["compiles"]
    losses = [linear.step() for _ in range(20)]
    assert executor.stats()["compiles"] == compiles
    # A parameter's pending value is its last update only, not a chain of all of them
    # (the bias is read only inside a fused loop: its update must still be stored).
    for p in linear.params:
        assert len(canonicalize([p._node])[0][0]) <= 5
    assert losses[-1] < losses[0]


def test_program_cache_is_bounded_and_evicted_programs_are_freed(monkeypatch):
    monkeypatch.setenv("LLGRAD_MAX_PROGRAMS", "3")
    executor.clear_memory_cache()
    before = executor.stats()
    refs = []
    for i in range(8):
        assert distinct_graph(i) == pytest.approx(distinct_graph_reference(i), rel=1e-5)
        refs.append(weakref.ref(executor.last_program()))
    after = executor.stats()
    assert after["cached_programs"] == 3
    assert after["evictions"] - before["evictions"] == 5
    gc.collect()
    assert [r() is not None for r in refs] == [False] * 5 + [True] * 3  # code freed with them
    assert distinct_graph(0) == pytest.approx(distinct_graph_reference(0), rel=1e-5)  # recompiled
    assert executor.stats()["compiles"] - after["compiles"] == 1


def distinct_graph_reference(i: int) -> float:
    v = np.full(1 + i, 2.0)
    for k in range(i % 3):
        v = np.tanh(v) if k % 2 else 1 / (1 + np.exp(-v))
    return float(v.sum())


def test_retired_jits_are_freed_with_their_last_program(monkeypatch):
    monkeypatch.setenv("LLGRAD_MAX_PROGRAMS", "2")
    monkeypatch.setattr(jit_module, "LINKS_PER_JIT", 2)
    executor.clear_memory_cache()
    jits = []
    for i in range(6):
        assert distinct_graph(700 + i) == pytest.approx(distinct_graph_reference(700 + i), rel=1e-5)
        jits.append(weakref.ref(jit_module.jit().lljit))
    gc.collect()
    # Three LLJITs took two programs each; only the last holds programs still in the cache.
    assert [r() is not None for r in jits] == [False] * 4 + [True] * 2


def test_many_distinct_graphs_keep_few_programs(monkeypatch):
    monkeypatch.setenv("LLGRAD_MAX_PROGRAMS", "3")
    executor.clear_memory_cache()
    for i in range(10):
        distinct_graph(100 + i)
    assert executor.stats()["cached_programs"] == 3
    assert live_programs() <= 3


# -- compiling many programs: a helper process takes what LLVM keeps per compile -----------------


def test_compile_helper_makes_the_same_object_code(monkeypatch):
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "0")
    executor.clear_memory_cache()
    here = distinct_graph(321), executor.last_program().object_code
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "1")
    before = compile_worker.counts()
    executor.clear_memory_cache()
    helped = distinct_graph(321), executor.last_program().object_code
    assert compile_worker.counts()["in_helper"] == before["in_helper"] + 2  # its kernel and its entry
    assert helped == here
    assert helped[0] == pytest.approx(distinct_graph_reference(321), rel=1e-5)


def test_compile_helper_is_replaced_after_its_quota(monkeypatch):
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "1")
    monkeypatch.setenv("LLGRAD_WORKER_COMPILES", "2")
    compile_worker._shutdown()
    before = compile_worker.counts()
    for i in range(3):
        assert distinct_graph(400 + i) == pytest.approx(distinct_graph_reference(400 + i), rel=1e-5)
    after = compile_worker.counts()
    assert after["in_helper"] - before["in_helper"] == 6  # each program: its kernel and its entry
    assert after["helpers_started"] - before["helpers_started"] == 3


def test_compiling_falls_back_to_this_process_when_the_helper_fails(monkeypatch):
    monkeypatch.setenv("LLGRAD_COMPILE_WORKER", "1")
    monkeypatch.setattr(compile_worker, "_broken", False)
    monkeypatch.setattr(compile_worker.sys, "executable", "/bin/false")  # the helper cannot start
    compile_worker._shutdown()
    before = compile_worker.counts()
    with pytest.warns(RuntimeWarning, match="compiling in this process"):
        value = distinct_graph(450)
    assert value == pytest.approx(distinct_graph_reference(450), rel=1e-5)
    assert compile_worker.counts()["in_process"] == before["in_process"] + 2  # its kernel, its entry


# -- what users drop is freed ---------------------------------------------------------------


def test_a_cached_program_does_not_keep_its_inputs_alive():
    x = llgrad.rand(1000)
    y = (x * 2).sum()
    y.item()
    refs = [weakref.ref(x), weakref.ref(x._node), weakref.ref(x._node.buffer.array), weakref.ref(y)]
    prog = executor.last_program()
    del x, y
    gc.collect()
    assert [r() for r in refs] == [None] * 4
    assert prog.schedule.inputs == [] and prog.schedule.params == []


def test_a_dropped_pending_graph_is_freed():
    a = llgrad.rand(10, requires_grad=True)
    b = (a * 3).tanh().sum()
    refs = [weakref.ref(b), weakref.ref(b._node), weakref.ref(b.grad_fn)]
    del b
    gc.collect()
    assert [r() for r in refs] == [None] * 3


def _autograd_step(x):
    x.grad = None
    y = (x * 2).exp()
    loss = y.sum()
    loss.backward()
    refs = [weakref.ref(t) for t in (y, y._node, loss, loss._node, loss.grad_fn, y.grad_fn)]
    return refs


def test_autograd_graph_is_freed_after_backward():
    x = llgrad.rand(100, requires_grad=True)
    _autograd_step(x)  # compiles
    gc.collect()
    gc.disable()
    try:
        refs = _autograd_step(x)  # a cache hit: no compiler objects involved
        # Freed by reference counting alone: no cycles hold a step's graph or its buffers.
        assert [r() for r in refs] == [None] * len(refs)
    finally:
        gc.enable()
    assert x.grad._node.srcs == ()  # the gradient keeps no history
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.detach().numpy()), rtol=1e-5)


def test_cached_training_steps_leave_memory_flat_short(linear):
    for _ in range(30):
        linear.step()
    gc.collect()
    start, objects = rss_mb(), len(gc.get_objects())
    for _ in range(300):
        linear.step()
    gc.collect()
    assert len(gc.get_objects()) - objects < 100  # no Python objects pile up per step
    assert rss_mb() - start < 4.0


# -- long runs (pytest -m slow) ---------------------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_cached_steps_leave_rss_flat(capsys):
    model = TinyMLP(seed=2)
    for _ in range(200):
        model.step()
    gc.collect()
    compiles, start = executor.stats()["compiles"], rss_mb()
    for _ in range(10_000):
        model.step()
    gc.collect()
    end = rss_mb()
    with capsys.disabled():
        print(f"\n10,000 cached steps: RSS {start:.1f} MB -> {end:.1f} MB")
    assert executor.stats()["compiles"] == compiles
    assert end - start < 5.0


@pytest.mark.slow
def test_two_thousand_distinct_graphs_stay_bounded(monkeypatch, capsys):
    monkeypatch.setenv("LLGRAD_MAX_PROGRAMS", "64")
    executor.clear_memory_cache()
    for i in range(100):
        distinct_graph(10_000 + i)
    gc.collect()
    start = rss_mb()
    for i in range(100, 2000):
        distinct_graph(10_000 + i)
    gc.collect()
    end = rss_mb()
    with capsys.disabled():
        print(f"\n2,000 distinct graphs: RSS after 100 {start:.1f} MB -> after 2,000 {end:.1f} MB")
    assert executor.stats()["cached_programs"] == 64
    assert live_programs() <= 64
    assert end - start < 12  # measured: +5 MB (+16 MB without fresh LLJITs, +190 MB without the helper)

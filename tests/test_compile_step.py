"""llgrad.compile: a whole step traced once per signature and replayed as one native program."""

import llgrad
import numpy as np
import pytest
from llgrad.trace_state import TraceError


def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    w1 = llgrad.tensor(rng.standard_normal((8, 16)).astype(np.float32) * 0.3, requires_grad=True)
    w2 = llgrad.tensor(rng.standard_normal((16, 4)).astype(np.float32) * 0.3, requires_grad=True)
    return [w1, w2]


def _loss(params, x, y):
    w1, w2 = params
    logits = (x @ w1).relu() @ w2
    return -(logits.log_softmax(1) * y).sum(1).mean()


def _batch(i):
    rng = np.random.default_rng(100 + i)
    x = llgrad.tensor(rng.standard_normal((32, 8)).astype(np.float32))
    y = llgrad.tensor(np.eye(4, dtype=np.float32)[rng.integers(0, 4, 32)])
    return x, y


def test_compiled_training_step_matches_eager_step_by_step():
    eager_params, compiled_params = _mlp(), _mlp()
    state = {"lr": 0.5}

    def step(params, x, y):
        for p in params:
            p.grad = None
        loss = _loss(params, x, y)
        loss.backward()
        with llgrad.no_grad():
            for p in params:
                p.sub_(p.grad * state["lr"])
        return loss

    compiled = llgrad.compile(step)
    for i in range(6):
        x, y = _batch(i)
        want = step(eager_params, x, y).item()
        got = compiled(compiled_params, x, y)
        assert got.item() == pytest.approx(want, rel=1e-5)
        for a, b in zip(eager_params, compiled_params):
            np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert compiled.traces == 1


def test_replay_is_one_program_run_and_no_compile():
    params = _mlp()

    @llgrad.compile
    def step(x, y):
        for p in params:
            p.grad = None
        loss = _loss(params, x, y)
        loss.backward()
        return loss

    step(*_batch(0))
    runs, compiles = llgrad.runtime.stats()["runs"], llgrad.runtime.stats()["compiles"]
    for i in range(1, 5):
        step(*_batch(i))
    assert llgrad.runtime.stats()["runs"] == runs + 4
    assert llgrad.runtime.stats()["compiles"] == compiles


def test_new_signature_retraces_with_reason_and_max_recompiles():
    @llgrad.compile(max_recompiles=1)
    def double(x):
        return x * 2

    double(llgrad.ones(3))
    double(llgrad.ones(3))
    double(llgrad.ones(4))
    assert double.traces == 2
    assert "shape" in double.reasons[-1] and "(3,)" in double.reasons[-1] and "(4,)" in double.reasons[-1]
    with pytest.raises(RuntimeError, match="max_recompiles=1"):
        double(llgrad.ones(5))


def test_value_dependent_control_flow_raises_naming_the_line():
    @llgrad.compile
    def branchy(x):
        y = x * 2
        if y.sum() > 0:  # the offending line
            return y
        return -y

    with pytest.raises(TraceError, match=r"test_compile_step.py:\d+.*if y.sum\(\) > 0"):
        branchy(llgrad.ones(3))


def test_guard_on_gradient_state_retraces():
    w = llgrad.ones(3, requires_grad=True)

    @llgrad.compile
    def accumulate(x):
        (w * x).sum().backward()

    accumulate(llgrad.ones(3))  # w.grad was None: the step creates it
    assert w.grad.tolist() == [1.0, 1.0, 1.0]
    accumulate(llgrad.ones(3))  # now it exists: accumulating is a different program
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    accumulate(llgrad.full((3,), 2.0))
    assert w.grad.tolist() == [4.0, 4.0, 4.0]
    assert accumulate.traces == 2


def test_number_arguments_are_part_of_the_signature_but_reuse_the_program():
    @llgrad.compile
    def scale(x, k):
        return x * k

    x = llgrad.arange(3.0)
    assert scale(x, 2.0).tolist() == [0.0, 2.0, 4.0]
    compiles = llgrad.runtime.stats()["compiles"]
    assert scale(x, 3.0).tolist() == [0.0, 3.0, 6.0]
    assert llgrad.runtime.stats()["compiles"] == compiles  # retraced, same program


def test_optimizer_settings_are_reread_and_branching_on_them_retraces():
    from llgrad import nn

    llgrad.manual_seed(0)
    lin = nn.Linear(4, 3)
    opt = llgrad.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)

    @llgrad.compile
    def step(x):
        opt.zero_grad()
        loss = lin(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    x = llgrad.ones(8, 4)
    for _ in range(3):
        step(x)
    traces = step.traces
    opt.param_groups[0]["lr"] = 0.0  # read again at replay: no retrace, no update
    w = lin.weight.detach().numpy().copy()
    step(x)
    assert step.traces == traces
    np.testing.assert_array_equal(lin.weight.detach().numpy(), w)
    opt.param_groups[0]["momentum"] = 0.0  # SGD branches on it: the step changes shape
    step(x)
    assert step.traces == traces + 1 and "changed" in step.reasons[-1]


def test_random_masks_are_fresh_at_every_replay():
    from llgrad import nn

    drop = nn.Dropout(0.5)

    @llgrad.compile
    def masked(x):
        return drop(x)

    masks = [masked(llgrad.ones(4000)).numpy() for _ in range(3)]
    assert masked.traces == 1
    assert not np.array_equal(masks[1], masks[2])
    for m in masks:
        assert set(np.unique(m)) == {0.0, 2.0} and abs(m.mean() - 1.0) < 0.1

"""llgrad.compile replays only what the trace assumed: module modes, the objects the function
read through globals and closures, the parameters and optimizer state it captured, argument
aliasing. A change retraces, with the reason logged; every traced signature is bounded."""

import gc
import logging
import weakref

import llgrad
import llgrad.nn as nn
import numpy as np
import pytest


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_eval_mode_stops_dropout(caplog):
    llgrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5))
    x = llgrad.ones(8, 4)

    @llgrad.compile
    def forward(x):
        return model(x)

    forward(x)
    model.eval()
    with caplog.at_level(logging.INFO, logger="llgrad.compile"):
        out = forward(x)
    _close(out.detach().numpy(), model(x).detach().numpy())  # eval: no dropout, the Linear alone
    assert forward.traces == 2
    assert "training changed: True -> False" in forward.reasons[-1]
    assert any("training" in r.getMessage() for r in caplog.records)
    model.train()
    assert (forward(x).detach().numpy() == 0).mean() > 0.3  # dropout again (that trace is still kept)
    assert forward.traces == 2


_global_w = llgrad.tensor([1.0, 2.0, 3.0])


def _scaled(x):
    return x * _global_w


def test_a_rebound_global_tensor_retraces():
    global _global_w
    compiled = llgrad.compile(_scaled)
    x = llgrad.ones(3)
    _close(compiled(x).numpy(), [1, 2, 3])
    old = _global_w
    try:
        _global_w = llgrad.tensor([10.0, 20.0, 30.0])
        _close(compiled(x).numpy(), [10, 20, 30])
        assert "global '_global_w'" in compiled.reasons[-1]
    finally:
        _global_w = old


def test_a_rebound_closure_variable_retraces():
    scale = llgrad.tensor([2.0])

    @llgrad.compile
    def f(x):
        return x * scale

    _close(f(llgrad.ones(2)).numpy(), [2, 2])
    scale = llgrad.tensor([5.0])  # noqa: F841  (read by f through its closure)
    _close(f(llgrad.ones(2)).numpy(), [5, 5])
    assert "'scale'" in f.reasons[-1]


def test_a_replaced_parameter_is_used():
    model = nn.Linear(3, 2)

    @llgrad.compile
    def f(x):
        return model(x)

    x = llgrad.ones(1, 3)
    f(x)
    model.weight = nn.Parameter(llgrad.zeros(2, 3))
    _close(f(x).detach().numpy(), model.bias.detach().numpy()[None])
    assert "parameter" in f.reasons[-1] and "weight" in f.reasons[-1]


def _train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    optimizer.step()
    return loss


def test_a_replaced_optimizer_is_used():
    llgrad.manual_seed(1)
    model = nn.Linear(3, 1)
    reference = nn.Linear(3, 1)
    reference.load_state_dict(model.state_dict())
    state = {"opt": llgrad.optim.SGD(model.parameters(), lr=0.1)}
    ref_opt = llgrad.optim.SGD(reference.parameters(), lr=0.1)

    @llgrad.compile
    def step(x, y):
        return _train_step(model, state["opt"], x, y)

    x, y = llgrad.ones(4, 3), llgrad.zeros(4, 1)
    for _ in range(2):
        step(x, y)
        _train_step(reference, ref_opt, x, y)
    # A new optimizer: momentum, another learning rate (the step reads it through a dict).
    state["opt"] = llgrad.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ref_opt = llgrad.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        step(x, y)
        _train_step(reference, ref_opt, x, y)
    _close(model.weight.detach().numpy(), reference.weight.detach().numpy())
    assert any("optimizer" in r for r in step.reasons[1:])


def test_optimizer_state_replaced_by_load_state_dict_is_used():
    llgrad.manual_seed(2)
    model = nn.Linear(3, 1)
    opt = llgrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    @llgrad.compile
    def step(x, y):
        return _train_step(model, opt, x, y)

    x, y = llgrad.ones(4, 3), llgrad.zeros(4, 1)
    saved_model, saved_opt = None, None
    for i in range(3):
        if i == 1:  # (state dicts hold the live tensors, as PyTorch's do: copies are kept)
            saved_model = {k: v.clone() for k, v in model.state_dict().items()}
            saved_opt = opt.state_dict()
            saved_opt["state"] = {k: {n: v.clone() for n, v in state.items()}
                                  for k, state in saved_opt["state"].items()}
        step(x, y)
    after_three = model.weight.detach().numpy().copy()
    model.load_state_dict(saved_model)
    opt.load_state_dict(saved_opt)  # new momentum buffers
    step(x, y)
    step(x, y)
    _close(model.weight.detach().numpy(), after_three)
    assert "state of optimizer SGD was replaced" in step.reasons[-1]


def test_aliased_arguments_retrace():
    @llgrad.compile
    def f(a, b):
        a.add_(1)
        return b * 1

    _close(f(llgrad.zeros(2), llgrad.zeros(2)).numpy(), [0, 0])
    t = llgrad.zeros(2)
    _close(f(t, t).numpy(), [1, 1])
    assert "alias" in f.reasons[-1]
    u, v = llgrad.zeros(2), llgrad.zeros(2)
    _close(f(u, v).numpy(), [0, 0])  # the first trace again
    assert f.traces == 2


def test_an_argument_aliasing_a_captured_parameter_retraces():
    w = llgrad.tensor([1.0, 2.0])

    @llgrad.compile
    def f(x):
        w.add_(1)
        return x * 1

    _close(f(llgrad.zeros(2)).numpy(), [0, 0])
    _close(f(w).numpy(), [3, 4])  # x is w, updated first
    _close(w.numpy(), [3, 4])


def test_traced_signatures_are_bounded(monkeypatch):
    monkeypatch.setenv("LLGRAD_MAX_PROGRAMS", "4")

    @llgrad.compile
    def f(x):
        return (x * 2).sum()

    first = None
    for n in range(1, 13):
        assert f(llgrad.ones(n)).item() == 2 * n
        if n == 1:
            first = weakref.ref(f.plans[next(iter(f.plans))][0].prog)
    assert sum(len(plans) for plans in f.plans.values()) == 4
    gc.collect()
    assert first() is None  # its program is freed (the executor dropped it too)
    assert f(llgrad.ones(12)).item() == 24 and f.traces == 12  # the newest are still replayed


@pytest.mark.parametrize("make", [
    lambda params: llgrad.optim.Adam(params, lr=0.1),
    lambda params: llgrad.optim.AdamW(params, lr=0.1, weight_decay=0.1, amsgrad=True),
    lambda params: llgrad.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
])
def test_compiled_optimizer_steps_match_eager(make):
    # Adam's step count was read once at the trace: every replay applied the bias correction of
    # step 2, and the weights drifted from eager ones from the third step on.
    llgrad.manual_seed(3)
    model, reference = nn.Linear(3, 1), nn.Linear(3, 1)
    reference.load_state_dict(model.state_dict())
    opt, ref_opt = make(model.parameters()), make(reference.parameters())

    @llgrad.compile
    def step(x, y):
        return _train_step(model, opt, x, y)

    rng = np.random.default_rng(0)
    for _ in range(6):
        x = llgrad.tensor(rng.standard_normal((4, 3)).astype(np.float32))
        y = llgrad.tensor(rng.standard_normal((4, 1)).astype(np.float32))
        step(x, y)
        _train_step(reference, ref_opt, x, y)
        _close(model.weight.detach().numpy(), reference.weight.detach().numpy())
    assert step.traces <= 3
    if "step" in opt.state[model.weight]:  # Adam's count, advanced by every replay
        assert opt.state[model.weight]["step"] == 6


def test_source_position_cache_is_bounded(monkeypatch):
    from llgrad.compiler import mlir_loc

    monkeypatch.setattr(mlir_loc, "CACHE_MAX", 8)
    for i in range(40):  # each exec makes a new code object, as generated or notebook code does
        code = compile(f"x{i} = 1", f"<cell {i}>", "exec")
        assert mlir_loc.position((code, 0)) is not None
        assert len(mlir_loc._cache) <= 8

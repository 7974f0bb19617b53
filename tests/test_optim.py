"""llgrad.optim against PyTorch's optimizers, and the cost model: updates are lazy IR, compiled once."""

from __future__ import annotations

import llgrad
import llgrad.nn as nn
import numpy as np
import pytest
from oracles import torch_or_skip
from training import assert_same_parameters, compiles, copy_weights, train_side_by_side

rng = np.random.default_rng(1)
X = rng.standard_normal((16, 6)).astype(np.float32)
Y = rng.integers(0, 3, 16)


def build(n):
    return n.Sequential(n.Linear(6, 8), n.ReLU(), n.Linear(8, 3))


def xent(lib, target):
    return lambda out: lib.nn.functional.cross_entropy(out, target)


CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "sgd_dampening_decay": ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    "sgd_maximize": ("SGD", dict(lr=0.01, maximize=True)),
    "adam": ("Adam", dict(lr=0.05)),
    "adam_decay_amsgrad": ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1,
                                        amsgrad=True)),
    "adamw": ("AdamW", dict(lr=0.05)),
    "adamw_amsgrad": ("AdamW", dict(lr=0.02, weight_decay=0.5, amsgrad=True)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_optimizer_matches_pytorch_over_five_steps(name):
    torch = torch_or_skip()
    cls, kwargs = CONFIGS[name]
    llgrad.manual_seed(4)
    model, torch_model = build(nn), build(torch.nn)
    copy_weights(model, torch_model, torch)
    losses, torch_losses = train_side_by_side(
        model, torch_model, lambda p: getattr(llgrad.optim, cls)(p, **kwargs),
        lambda p: getattr(torch.optim, cls)(p, **kwargs), xent(llgrad, llgrad.tensor(Y)),
        xent(torch, torch.tensor(Y)), [llgrad.tensor(X)], [torch.tensor(X)])
    np.testing.assert_allclose(losses, torch_losses, rtol=2e-5, atol=1e-6)
    assert_same_parameters(model, torch_model)


def test_param_groups_and_changing_learning_rates_match_pytorch_without_recompiling():
    torch = torch_or_skip()
    llgrad.manual_seed(5)
    model, torch_model = build(nn), build(torch.nn)
    copy_weights(model, torch_model, torch)

    def groups(m):
        return [{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.01, "weight_decay": 0.1}]

    opt, topt = llgrad.optim.Adam(groups(model), lr=0.05), torch.optim.Adam(groups(torch_model), lr=0.05)
    x, y, tx, ty = llgrad.tensor(X), llgrad.tensor(Y), torch.tensor(X), torch.tensor(Y)
    for step in range(6):
        if step == 2:
            warm = compiles()
        for o in (opt, topt):
            o.param_groups[0]["lr"] = 0.05 / (step + 1)  # a schedule: a new value every step
        opt.zero_grad()
        llgrad.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(torch_model(tx), ty).backward()
        topt.step()
    assert compiles() == warm, "a changed learning rate recompiled"
    assert_same_parameters(model, torch_model)


def test_a_training_loop_compiles_a_bounded_number_of_programs():
    model = build(nn)
    opt = llgrad.optim.Adam(model.parameters(), lr=0.01)
    x, y = llgrad.tensor(X), llgrad.tensor(Y)
    runs = []
    for step in range(8):
        if step == 2:  # step 1 compiled the update that reads existing Adam state
            warm = compiles()
        before = llgrad.runtime.stats()["runs"]
        opt.zero_grad()
        loss = llgrad.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # computed with the gradients: no extra program
        runs.append(llgrad.runtime.stats()["runs"] - before)
    assert compiles() == warm
    assert runs[2:] == [2] * 6  # forward + backward, then the whole update in one program


def test_deferred_update_fuses_into_the_next_program_with_the_same_results(monkeypatch):
    def run(defer: bool):
        monkeypatch.setattr(llgrad.optim.Optimizer, "defer_update", defer)
        llgrad.manual_seed(7)
        model = build(nn)
        opt = llgrad.optim.SGD(model.parameters(), lr=0.1)
        x, y = llgrad.tensor(X), llgrad.tensor(Y)
        runs = []
        for _ in range(5):
            before = llgrad.runtime.stats()["runs"]
            opt.zero_grad()
            llgrad.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            runs.append(llgrad.runtime.stats()["runs"] - before)
        return [p.detach().numpy().copy() for p in model.parameters()], runs

    eager, eager_runs = run(False)
    deferred, deferred_runs = run(True)
    assert eager_runs == [2] * 5 and deferred_runs == [1] * 5  # one program per step when deferred
    for a, b in zip(eager, deferred):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_update_is_recorded_lazily_then_computed_in_one_program():
    w = nn.Parameter(llgrad.ones(3))
    b = nn.Parameter(llgrad.zeros(3))
    opt = llgrad.optim.SGD([w, b], lr=0.5, momentum=0.9)
    (w * 2 + b).sum().backward()
    before = llgrad.runtime.stats()["runs"]
    opt.step()
    assert llgrad.runtime.stats()["runs"] == before + 1
    assert w.tolist() == [0.0, 0.0, 0.0] and b.tolist() == [-0.5, -0.5, -0.5]
    assert w.is_leaf and w.requires_grad and w.grad_fn is None


def test_zero_grad_and_closure():
    model = nn.Linear(3, 1)
    opt = llgrad.optim.SGD(model.parameters(), lr=0.1)

    def closure():
        opt.zero_grad()
        loss = model(llgrad.ones(2, 3)).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(loss.item()) and model.weight.grad is not None
    opt.zero_grad(set_to_none=False)
    assert model.weight.grad is not None and not model.weight.grad.numpy().any()
    opt.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None
    opt.step()  # no gradients: nothing changes


def test_state_dict_round_trip_resumes_training_exactly(tmp_path):
    def run(model, opt, steps):
        x, y = llgrad.tensor(X), llgrad.tensor(Y)
        for _ in range(steps):
            opt.zero_grad()
            llgrad.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    llgrad.manual_seed(6)
    model = build(nn)
    opt = llgrad.optim.AdamW(model.parameters(), lr=0.02, amsgrad=True)
    run(model, opt, 2)
    llgrad.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.npz")
    run(model, opt, 2)

    resumed = build(nn)
    ropt = llgrad.optim.AdamW(resumed.parameters(), lr=0.5)
    ckpt = llgrad.load(tmp_path / "ckpt.npz")
    resumed.load_state_dict(ckpt["model"])
    ropt.load_state_dict(ckpt["opt"])
    assert ropt.param_groups[0]["lr"] == 0.02 and ropt.param_groups[0]["betas"] == (0.9, 0.999)
    assert ropt.state_dict()["state"][0]["step"] == 2
    run(resumed, ropt, 2)
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_constructor_errors():
    p = [nn.Parameter(llgrad.ones(2))]
    with pytest.raises(ValueError, match="Invalid learning rate"):
        llgrad.optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        llgrad.optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        llgrad.optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        llgrad.optim.Adam([])
    with pytest.raises(ValueError, match="non-leaf"):
        llgrad.optim.SGD([p[0] * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        llgrad.optim.SGD([{"params": p}, {"params": p}], lr=0.1)

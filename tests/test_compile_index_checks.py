"""Index bounds in llgrad.compile: a compiled step's program checks the indices it is given at
every call (the values differ from call to call, so the trace cannot read them); a replay with
an index out of bounds raises PyTorch's IndexError before it stores anything."""

import llgrad
import numpy as np
import pytest


def _embedding_step():
    llgrad.manual_seed(0)
    emb = llgrad.nn.Embedding(10, 4)
    opt = llgrad.optim.SGD(emb.parameters(), lr=0.1)

    @llgrad.compile
    def step(idx):
        loss = emb(idx).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return emb, step


def _eager_rows_after(steps, weight):
    w = weight.copy()
    for idx in steps:
        g = np.zeros_like(w)
        np.add.at(g, idx, 2 * w[idx])
        w -= 0.1 * g
    return w


def test_embedding_indices_checked_at_every_replay_and_nothing_stored():
    emb, step = _embedding_step()
    start = emb.weight.detach().numpy().copy()
    good = [[1, 2, 3], [4, 4, 9], [0, 5, 6]]
    for idx in good:
        step(llgrad.tensor(idx))
    assert step.traces == 1
    before = emb.weight.detach().numpy().copy()
    np.testing.assert_allclose(before, _eager_rows_after(good, start), rtol=1e-6)
    for bad in ([1, 10, 3], [-1, 2, 3]):  # embedding rows do not count from the end
        with pytest.raises(IndexError, match="index out of range in self"):
            step(llgrad.tensor(bad))
        np.testing.assert_array_equal(emb.weight.detach().numpy(), before)
    assert step.traces == 1
    step(llgrad.tensor([7, 8, 9]))
    np.testing.assert_allclose(emb.weight.detach().numpy(), _eager_rows_after(good + [[7, 8, 9]], start),
                               rtol=1e-6)


def test_first_call_with_a_bad_index_raises_before_tracing_anything():
    emb, step = _embedding_step()
    with pytest.raises(IndexError, match="index out of range in self"):
        step(llgrad.tensor([3, 12]))
    step(llgrad.tensor([3, 2]))
    with pytest.raises(IndexError):
        step(llgrad.tensor([3, 12]))


def test_advanced_indexing_bounds_and_negative_indices_in_a_compiled_step():
    x = llgrad.tensor(np.arange(15.0).reshape(5, 3))

    @llgrad.compile
    def pick(idx):
        return x[idx] * 2

    np.testing.assert_array_equal(pick(llgrad.tensor([0, 4])).numpy(), x.numpy()[[0, 4]] * 2)
    np.testing.assert_array_equal(pick(llgrad.tensor([-1, -5])).numpy(), x.numpy()[[-1, -5]] * 2)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 5"):
        pick(llgrad.tensor([1, 5]))
    with pytest.raises(IndexError, match="index -6 is out of bounds for dimension 0 with size 5"):
        pick(llgrad.tensor([-6, 0]))
    assert pick.traces == 1


def test_indices_computed_inside_the_step_are_checked_by_the_program():
    x = llgrad.tensor(np.arange(6.0))

    @llgrad.compile
    def pick(idx):
        return x[idx * 2 + 1]

    np.testing.assert_array_equal(pick(llgrad.tensor([0, 2])).numpy(), [1.0, 5.0])
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 0 with size 6"):
        pick(llgrad.tensor([3, 0]))
    np.testing.assert_array_equal(pick(llgrad.tensor([1, 1])).numpy(), [3.0, 3.0])
    assert pick.traces == 1


def test_a_step_differentiating_its_argument_replays():
    """autograd.grad(create_graph=True) with respect to an argument, and backward() giving that
    argument a .grad: every call's argument gets its own gradient, and the step replays."""
    rng = np.random.default_rng(0)
    w = llgrad.tensor(rng.standard_normal((2, 3)), requires_grad=True)

    @llgrad.compile
    def step(x):
        x.requires_grad_(True)
        y = (x @ w).tanh().sum()
        (g,) = llgrad.autograd.grad(y, x, create_graph=True)
        loss = (g * g).sum()
        w.grad = None
        loss.backward()
        return loss

    for _ in range(4):
        data = rng.standard_normal((4, 2))
        x = llgrad.tensor(data)
        loss = step(x)
        assert x.requires_grad and x.grad is not None
        ref_x = llgrad.tensor(data, requires_grad=True)
        (g,) = llgrad.autograd.grad((ref_x @ w.detach()).tanh().sum(), ref_x, create_graph=True)
        ref_loss = (g * g).sum()
        ref_loss.backward()
        np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-12)
    assert step.traces == 1, step.reasons

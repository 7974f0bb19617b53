"""Compilation: one program per graph shape, cached; scalars are run-time parameters;
fusion turns elementwise chains and their reductions into single kernels."""

import llgrad
import numpy as np
import pytest
from llgrad.runtime import stats


def _compiles():
    return stats()["compiles"]


def test_loop_of_identical_steps_compiles_once():
    x = llgrad.ones(8, 8, requires_grad=True)
    w = llgrad.full((8,), 0.5)
    before = _compiles()
    hits = stats()["cache_hits"]
    for step in range(100):
        x.grad = None
        lr = 0.1 * (step + 1)  # a changing Python scalar is a parameter, not a new program
        loss = ((x * w + lr).tanh() * 3).mean()
        loss.backward()
        assert x.grad is not None
    assert _compiles() - before == 1
    assert stats()["cache_hits"] - hits == 99
    np.testing.assert_allclose(loss.item(), np.tanh(0.5 + 10.0) * 3, rtol=1e-6)


def test_changed_shape_compiles_again():
    def step(n):
        x = llgrad.ones(n, requires_grad=True)
        (x * x).sum().backward()
        return x.grad

    step(5)
    before = _compiles()
    step(5)
    assert _compiles() == before
    step(6)
    assert _compiles() == before + 1


def test_scalar_value_is_not_baked_in():
    x = llgrad.arange(4.0)
    before = _compiles()
    a = (x * 2.0 + 1.0).tolist()
    b = (x * 3.0 + 5.0).tolist()
    assert a == [1.0, 3.0, 5.0, 7.0] and b == [5.0, 8.0, 11.0, 14.0]
    assert _compiles() == before + 1


def test_elementwise_chain_of_five_ops_is_one_kernel():
    x = llgrad.rand(100)
    y = (((x * 2 + 1).exp() - 3) / 4).tanh()
    assert len(llgrad.debug.kernels(y)) == 1


def test_relu_chain_with_sum_is_one_kernel():
    x = llgrad.rand(100)
    assert len(llgrad.debug.kernels((x * 2 + 1).relu().sum())) == 1


def test_tutorial_forward_and_backward_is_one_kernel():
    x = llgrad.ones(2, 2, requires_grad=True)
    y = x + 2
    out = (y * y * 3).mean()
    out.backward()  # realizes x.grad, and y and out that are still held, in one program
    kernels = llgrad.debug.last_program().kernels
    assert len(kernels) == 1, [k.name for k in kernels]
    assert out.item() == 27.0 and y.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_softmax_like_graph_fuses_reduction_consumers():
    x = llgrad.rand(16, 32)
    m = x.max(dim=1, keepdim=True)[0]
    e = (x - m).exp()
    s = e / e.sum(dim=1, keepdim=True)
    names = llgrad.debug.kernels(s)
    assert len(names) == 1, names  # max, sum and the normalized output: phases of one row kernel
    ref = np.exp(x.numpy() - x.numpy().max(1, keepdims=True))
    np.testing.assert_allclose(s.numpy(), ref / ref.sum(1, keepdims=True), rtol=1e-6)


def test_realized_values_are_not_recomputed():
    x = llgrad.rand(50)
    y = x.exp() * 2
    y.numpy()
    before = stats()["runs"]
    z = y + 1
    z.numpy()
    # z's program reads y's buffer: y is an input, not part of z's graph.
    prog = llgrad.debug.program(y + 2)
    assert [b.role for b in prog.schedule.bufs if b.role == "in"] == ["in"]
    assert stats()["runs"] == before + 1


@pytest.mark.parametrize("n", [1, 7, 1000, 4099])
def test_odd_sizes_and_tails(n):
    a = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    x = llgrad.tensor(a)
    np.testing.assert_allclose((x.sigmoid() * x).sum().item(), (a / (1 + np.exp(-a))).sum(), rtol=1e-4)

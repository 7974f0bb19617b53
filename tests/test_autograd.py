"""Autograd semantics of the core: leaves, accumulation, retain_graph, errors, grad modes."""

import warnings

import llgrad
import numpy as np
import pytest


def test_requires_grad_propagation_and_leaves():
    x = llgrad.ones(3, requires_grad=True)
    c = llgrad.ones(3)
    y = x * c
    assert y.requires_grad and not y.is_leaf and x.is_leaf and c.is_leaf
    assert not (c * 2).requires_grad and (c * 2).grad_fn is None
    assert y.grad_fn.next_functions[1] == (None, 0)
    assert isinstance(y.grad_fn.next_functions[0][0], llgrad.autograd.AccumulateGrad)
    # The same AccumulateGrad object for every use of the leaf while it is alive.
    assert (x + 1).grad_fn.next_functions[0][0] is y.grad_fn.next_functions[0][0]
    assert (x > 0).requires_grad is False


def test_grad_accumulates_across_backward_calls():
    x = llgrad.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    g = x.grad
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0])
    assert g is x.grad  # accumulated in place, as PyTorch does
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_second_backward_fails_only_where_saved_values_were_freed():
    x = llgrad.ones(3, requires_grad=True)
    s = (x + 2).sum()
    s.backward()
    s.backward()  # AddBackward0 and SumBackward0 save no tensors
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    m = (x * 2).sum()
    m.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        m.backward()
    r = (x * 2).sum()
    r.backward(retain_graph=True)
    r.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0, 8.0])


def test_backward_errors():
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (llgrad.ones(2, requires_grad=True) * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        llgrad.ones(2).sum().backward()
    mismatch = (r"Mismatch in shape: grad_output\[0\] has a shape of torch.Size\(\[1\]\) and "
                r"output\[0\] has a shape of torch.Size\(\[\]\)")
    with pytest.raises(RuntimeError, match=mismatch):
        llgrad.ones(2, requires_grad=True).sum().backward(llgrad.tensor([1.0]))
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        llgrad.arange(3).requires_grad_()
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype"):
        llgrad.autograd.Variable(llgrad.arange(3), requires_grad=True)


def test_backward_with_gradient_argument():
    x = llgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.backward(llgrad.tensor([0.1, 1.0, 0.0001]))
    np.testing.assert_allclose(x.grad.numpy(), [0.2, 2.0, 0.0002], rtol=1e-6)


def test_detach_and_no_grad():
    x = llgrad.ones(2, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    with llgrad.no_grad():
        y = x * 2
        assert not llgrad.is_grad_enabled()
        with llgrad.enable_grad():
            assert (x * 2).requires_grad
    assert not y.requires_grad and y.grad_fn is None
    llgrad.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        llgrad.set_grad_enabled(True)
    with llgrad.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad

    @llgrad.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad


def test_non_leaf_grad_warns_and_retain_grad():
    x = llgrad.ones(2, requires_grad=True)
    y = x * 3
    z = y.sum()
    y.retain_grad()
    z.backward()
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 1.0])
    w = x * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert w.grad is None
    assert "not a leaf Tensor" in str(caught[0].message)


def test_hooks_can_replace_gradients():
    x = llgrad.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    y.sum().backward()
    assert seen == [[30.0, 30.0]]
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])


def test_autograd_grad_and_create_graph():
    x = llgrad.tensor([1.0, 2.0], requires_grad=True)
    y = (x ** 3).sum()
    (g,) = llgrad.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 12.0])
    assert g.requires_grad
    assert x.grad is None
    (h,) = llgrad.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [6.0, 12.0])


def test_data_is_untracked_alias():
    x = llgrad.ones(2, requires_grad=True)
    d = x.data
    assert not d.requires_grad and d.is_leaf
    assert x._version == 0
    with llgrad.no_grad():
        x.mul_(2)
    assert x._version == 1
    np.testing.assert_array_equal(d.numpy(), [2.0, 2.0])  # same value


def test_inplace_on_leaf_requiring_grad_is_rejected():
    x = llgrad.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        x.add_(1)


def test_modified_saved_tensor_is_detected():
    x = llgrad.ones(2, requires_grad=True)
    y = x.exp()
    z = y * 2
    with llgrad.no_grad():
        y.add_(1)  # y is saved by ExpBackward0 (its output)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_data_dependent_control_flow():
    a = llgrad.tensor(0.3, requires_grad=True)
    b = a * 2
    steps = 0
    while b.norm() < 10:
        b = b * 2
        steps += 1
    c = b if b.sum() > 0 else 100 * b
    c.backward()
    assert a.grad.item() == 2.0 ** (steps + 1)


def test_variable_and_legacy_constructors():
    from llgrad.autograd import Variable

    t = llgrad.ones(2, 2)
    v = Variable(t, requires_grad=True)
    assert v.requires_grad and not t.requires_grad and v.is_leaf
    with pytest.warns(UserWarning, match="volatile was removed"):
        Variable(t, volatile=True)
    assert llgrad.Tensor([[1, 2], [3, 4]]).dtype is llgrad.float32
    assert llgrad.FloatTensor([0.1]).dtype is llgrad.float32
    assert llgrad.DoubleTensor([1]).dtype is llgrad.float64
    assert llgrad.LongTensor([1]).dtype is llgrad.int64
    assert tuple(llgrad.Tensor(2, 3).shape) == (2, 3)
    assert isinstance(llgrad.ones(2), llgrad.FloatTensor)
    assert not isinstance(llgrad.ones(2), llgrad.LongTensor)
    assert isinstance(llgrad.ones(2), llgrad.Tensor)

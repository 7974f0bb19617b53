"""In-place ops and version counters, as PyTorch defines them."""

import llgrad
import numpy as np
import pytest


def both():
    torch = pytest.importorskip("torch")
    return (llgrad, torch)


INPLACE = {
    "add_": lambda t: t.add_(2), "sub_": lambda t: t.sub_(t * 0.5), "mul_": lambda t: t.mul_(3),
    "div_": lambda t: t.div_(4), "zero_": lambda t: t.zero_(), "fill_": lambda t: t.fill_(7),
    "copy_": lambda t: t.copy_(t * 2 + 1), "clamp_": lambda t: t.clamp_(-0.2, 0.3),
    "setitem": lambda t: t.__setitem__((slice(None), 1), 5.0) or t, "iadd": lambda t: t.__iadd__(1.5),
    "pow_": lambda t: t.pow_(2), "exp_": lambda t: t.exp_(),
    "masked_fill_": lambda t: t.masked_fill_(t > 0, 0.0),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_values_versions_and_identity(name):
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    results = []
    for L in both():
        t = L.tensor(data)
        view = t[1:]
        out = INPLACE[name](t)
        assert out is t
        results.append((t.numpy().copy(), view.numpy().copy(), t._version))
    (a, av, ver_a), (b, bv, ver_b) = results
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(av, bv, rtol=1e-6)
    assert ver_a == ver_b == 1


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_gradients_match_torch(name):
    data = np.random.default_rng(1).uniform(0.2, 1.0, (3, 4)).astype(np.float32)
    grads = []
    for L in both():
        x = L.tensor(data, requires_grad=True)
        y = x * 2
        INPLACE[name](y)
        (y * x).sum().backward()
        grads.append(x.grad.numpy().copy())
    np.testing.assert_allclose(*grads, rtol=1e-5, atol=1e-6)


def test_leaf_and_view_of_leaf_rejected_outside_no_grad():
    x = llgrad.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        x.mul_(2)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[0] = 1.0
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[1:].zero_()
    with llgrad.no_grad():
        x.mul_(2)
        x[0] = 5.0
    assert x.tolist() == [5.0, 2.0, 2.0] and x.is_leaf and x.requires_grad


def test_modified_saved_input_raises_including_through_detach():
    x = llgrad.ones(3, requires_grad=True)
    y = x * 2
    z = y * y  # saves y
    y.detach().add_(1)  # detach shares the version counter
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_modified_saved_output_raises():
    x = llgrad.ones(3, requires_grad=True)
    y = x.exp()
    y.add_(1)  # ExpBackward0 saved y
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    w = x.sigmoid()
    w.exp_()  # SigmoidBackward0 saved w too
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()
    v = (x * 1).exp_()  # an in-place op's own output is saved by its node: fine
    v.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [np.e] * 3, rtol=1e-6)


def test_writes_through_data_are_untracked():
    x = llgrad.ones(3, requires_grad=True)
    y = x * x
    x.data.add_(1)  # a separate version counter: no error, and the new value is used
    assert x._version == 0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0, 4.0])
    x.data = llgrad.zeros(3)
    assert x.tolist() == [0.0, 0.0, 0.0] and x.requires_grad


def test_inplace_dtype_and_shape_errors():
    i = llgrad.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        i.mul_(1.5)
    x = llgrad.ones(3)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        x.add_(llgrad.ones(2, 3))
    e = llgrad.ones(3, 1).expand(3, 4)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e.add_(1)

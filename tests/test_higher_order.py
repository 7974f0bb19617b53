"""autograd.grad, create_graph and double backward: the gradient is itself a graph that
is differentiated and compiled. Second derivatives are checked against finite differences
of first derivatives (Hessian-vector products)."""

import llgrad
import numpy as np
import pytest

RNG = np.random.default_rng(11)


def grad_of(f, x: np.ndarray) -> np.ndarray:
    t = llgrad.tensor(x, requires_grad=True)
    (g,) = llgrad.autograd.grad(f(t), t)
    return g.numpy()


def hvp(f, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    t = llgrad.tensor(x, requires_grad=True)
    (g,) = llgrad.autograd.grad(f(t), t, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    (h,) = llgrad.autograd.grad((g * llgrad.tensor(v)).sum(), t)
    return h.numpy()


W = RNG.standard_normal((4, 3))
FUNCTIONS = {
    "tanh": lambda t: (t.tanh() * t).sum(),
    "sigmoid": lambda t: (t.sigmoid() ** 2).sum(),
    "log_softmax": lambda t: (t.log_softmax(1) * llgrad.tensor(W.T)).sum(),
    "matmul": lambda t: ((t @ llgrad.tensor(W)).tanh() @ llgrad.tensor(W.T)).pow(2).sum(),
    "softmax": lambda t: (t.softmax(0) * t).sum(),
    "exp_log": lambda t: ((t * t + 1).log() * t.exp()).mean(),
    "norm_div": lambda t: (t / t.norm()).sum() * t.sum(),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_hessian_vector_product_matches_finite_differences(name):
    f = FUNCTIONS[name]
    x = RNG.standard_normal((3, 4))
    v = RNG.standard_normal((3, 4))
    eps = 1e-5
    numeric = (grad_of(f, x + eps * v) - grad_of(f, x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hvp(f, x, v), numeric, rtol=1e-5, atol=1e-7)


def test_backward_create_graph_then_differentiate_grad():
    x = llgrad.tensor([0.5, -1.0, 2.0], requires_grad=True, dtype=llgrad.float64)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.detach().numpy(), 3 * np.array([0.5, -1.0, 2.0]) ** 2)
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([0.5, -1.0, 2.0]))


def test_third_derivative():
    x = llgrad.tensor(0.7, dtype=llgrad.float64, requires_grad=True)
    (d1,) = llgrad.autograd.grad(x.sin() * x, x, create_graph=True)
    (d2,) = llgrad.autograd.grad(d1, x, create_graph=True)
    (d3,) = llgrad.autograd.grad(d2, x)
    # d3/dx3 (x sin x) = -3 sin x - x cos x
    assert d3.item() == pytest.approx(-3 * np.sin(0.7) - 0.7 * np.cos(0.7), rel=1e-12)


def test_grad_arguments():
    x = llgrad.tensor([1.0, 2.0], requires_grad=True)
    z = llgrad.tensor([3.0], requires_grad=True)
    y = x * 2
    (gx,) = llgrad.autograd.grad(y, x, grad_outputs=llgrad.tensor([1.0, 10.0]), retain_graph=True)
    assert gx.tolist() == [2.0, 20.0]
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        llgrad.autograd.grad(y.sum(), [x, z], retain_graph=True)
    gx, gz = llgrad.autograd.grad(y.sum(), [x, z], allow_unused=True, retain_graph=True)
    assert gz is None and gx.tolist() == [2.0, 2.0]
    gx, gz = llgrad.autograd.grad(y.sum(), [x, z], materialize_grads=True)
    assert gz.tolist() == [0.0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        llgrad.autograd.grad(y.sum(), [llgrad.ones(2)])


def test_grad_of_non_leaf_input():
    x = llgrad.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    (gh,) = llgrad.autograd.grad(y, h)
    assert gh.tolist() == [6.0, 12.0]


def test_matches_torch_double_backward():
    torch = pytest.importorskip("torch")
    data = RNG.standard_normal((3, 4)).astype(np.float32)
    out = []
    for L in (llgrad, torch):
        x = L.tensor(data, requires_grad=True)
        y = (x.tanh() @ L.tensor(W.astype(np.float32))).log_softmax(1).sum()
        (g,) = L.autograd.grad(y, x, create_graph=True)
        (g.sigmoid() * x).sum().backward()
        out.append(x.grad.numpy().copy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-4, atol=1e-5)

"""llgrad.nn: Module/Parameter API, layers and nn.functional against PyTorch and finite differences."""

from __future__ import annotations

import math

import llgrad
import llgrad.nn as nn
import llgrad.nn.functional as F
import numpy as np
import pytest
from oracles import assert_match_torch, check_gradients, torch_or_skip
from training import assert_same_parameters, copy_weights, train_side_by_side

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# -- Parameter ------------------------------------------------------------------------------------

def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(llgrad.ones(2))
    assert isinstance(p, nn.Parameter) and isinstance(p, llgrad.Tensor)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert repr(p) == "Parameter containing:\ntensor([1., 1.], requires_grad=True)"
    y = p * 2  # results of ops are plain tensors with history
    assert type(y) is llgrad.Tensor and y.grad_fn is not None
    y.sum().backward()
    assert p.grad.tolist() == [2.0, 2.0]
    frozen = nn.Parameter(llgrad.zeros(3), requires_grad=False)
    assert not frozen.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(llgrad.arange(3))


def test_parameter_shares_its_value_with_the_source_tensor():
    data = llgrad.zeros(2)
    p = nn.Parameter(data)
    with llgrad.no_grad():
        p.add_(1)
    assert data.tolist() == [1.0, 1.0]


# -- Module ---------------------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        self.head = nn.Linear(3, 2, bias=False)
        self.scale = nn.Parameter(llgrad.ones(1))
        self.register_buffer("running", llgrad.zeros(2))
        self.register_buffer("scratch", llgrad.zeros(1), persistent=False)
        self.drop = nn.Dropout(0.25)

    def forward(self, x):
        return self.drop(self.head(self.features(x))) * self.scale + self.running


def test_module_registers_parameters_children_and_buffers_in_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["scale", "features.0.weight", "features.0.bias",
                                                      "head.weight"]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert [n for n, _ in net.named_children()] == ["features", "head", "drop"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1", "head", "drop"]
    assert [n for n, _ in net.named_buffers()] == ["running", "scratch"]
    assert list(net.state_dict()) == ["scale", "running", "features.0.weight", "features.0.bias",
                                      "head.weight"]
    assert net.head.bias is None
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing  # noqa: B018
    with pytest.raises(TypeError, match="cannot assign"):
        net.scale = llgrad.ones(1)  # a plain tensor cannot replace a parameter


def test_train_eval_and_zero_grad():
    net = Net()
    assert net.training and net.drop.training
    assert net.eval() is net
    assert not net.training and not net.features[0].training and not net.drop.training
    net.train()
    assert net.drop.training
    net.eval()(llgrad.ones(5, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_and_errors():
    a, b = Net(), Net()
    a.state_dict()["running"]  # state_dict values are detached
    assert not a.state_dict()["scale"].requires_grad
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert np.array_equal(x.numpy(), y.numpy()), name
    partial = dict(a.state_dict())
    del partial["head.weight"]
    partial["extra"] = llgrad.zeros(1)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "head.weight"'):
        b.load_state_dict(partial)
    result = b.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["head.weight"] and result.unexpected_keys == ["extra"]
    wrong = dict(a.state_dict(), scale=llgrad.zeros(2))
    with pytest.raises(RuntimeError, match="size mismatch for scale"):
        b.load_state_dict(wrong)


def test_module_to_double_converts_parameters_in_place():
    model = nn.Linear(3, 2)
    weight = model.weight
    model.double()
    assert model.weight is weight and weight.dtype is llgrad.float64 and isinstance(weight, nn.Parameter)
    assert model(llgrad.ones(1, 3, dtype=llgrad.float64)).dtype is llgrad.float64


_REPR = """Sequential(
  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (1): ReLU()
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): Flatten(start_dim=1, end_dim=-1)
  (4): Linear(in_features=64, out_features=10, bias=True)
  (5): Dropout(p=0.1, inplace=False)
  (6): LayerNorm((10,), eps=1e-05, elementwise_affine=True, bias=True)
  (7): GELU(approximate='tanh')
  (8): Embedding(10, 3, padding_idx=0)
)"""


def _repr_model(lib):
    n = lib.nn
    return n.Sequential(n.Conv2d(1, 4, 3, padding=1), n.ReLU(), n.MaxPool2d(2), n.Flatten(), n.Linear(64, 10),
                        n.Dropout(0.1), n.LayerNorm(10), n.GELU(approximate="tanh"),
                        n.Embedding(10, 3, padding_idx=0))


def test_repr_is_pytorchs():
    assert repr(_repr_model(llgrad)) == _REPR


def test_repr_matches_live_pytorch():
    torch = torch_or_skip()
    assert repr(_repr_model(llgrad)) == repr(_repr_model(torch))
    for make in (lambda n: n.Tanh(), lambda n: n.Sigmoid(), lambda n: n.GELU(),
                 lambda n: n.Linear(2, 3, bias=False),
                 lambda n: n.Conv2d(2, 3, (3, 5), stride=2, dilation=2, bias=False), lambda n: n.Identity(),
                 lambda n: n.CrossEntropyLoss(), lambda n: n.Softmax(dim=1), lambda n: n.LeakyReLU(0.2),
                 lambda n: n.Conv2d(1, 1, 3, padding="same"), lambda n: n.LayerNorm([2, 3], bias=False),
                 lambda n: n.Embedding(4, 2), lambda n: n.MaxPool2d((2, 3), stride=1, ceil_mode=True),
                 lambda n: n.ModuleList([n.Linear(2, 2), n.Linear(2, 2), n.ReLU(), n.Linear(2, 2)]),
                 lambda n: n.ModuleList()):
        assert repr(make(llgrad.nn)) == repr(make(torch.nn))


# -- initialization ------------------------------------------------------------------------------

def test_default_initializations_follow_pytorchs_bounds():
    llgrad.manual_seed(1)
    lin = nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)  # kaiming_uniform_(a=sqrt(5)) on fan_in 50
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.8 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # U(-a, a) has std a / sqrt(3)
    conv = nn.Conv2d(3, 8, 3)
    assert np.abs(conv.weight.detach().numpy()).max() <= 1 / math.sqrt(27)
    emb = nn.Embedding(200, 50, padding_idx=3)
    e = emb.weight.detach().numpy()
    assert not e[3].any() and abs(e.std() - 1) < 0.05
    ln = nn.LayerNorm(5)
    assert ln.weight.tolist() == [1.0] * 5 and ln.bias.tolist() == [0.0] * 5


def test_init_functions_statistics():
    llgrad.manual_seed(2)
    w = llgrad.empty(300, 200)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    nn.init.xavier_uniform_(w, gain=2.0)
    a = 2.0 * math.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= a and np.abs(w.numpy()).max() > 0.99 * a
    nn.init.xavier_normal_(w)
    assert abs(w.numpy().std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500)
    nn.init.constant_(w, 0.5)
    assert (w.numpy() == 0.5).all()
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.numpy()).max() <= 0.5
    p = nn.Parameter(llgrad.zeros(4))
    nn.init.ones_(p)  # a leaf that requires grad: filled under no_grad, stays a leaf
    assert p.is_leaf and p.tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.kaiming_uniform_(llgrad.empty(3))


def test_calculate_gain_matches_pytorch():
    torch = torch_or_skip()
    for args in (("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu",),
                 ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu",)):
        assert nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))


# -- functional against PyTorch -----------------------------------------------------------------------

def _logits_targets(n=6, c=5):
    return randn(n, c), rng.integers(0, c, n).astype(np.int64)


def nnf(lib):
    return lib.nn.functional


FUNCTIONAL = {
    "relu": (lambda lib, x: nnf(lib).relu(x), [randn(4, 5)]),
    "gelu": (lambda lib, x: nnf(lib).gelu(x), [randn(4, 50) * 3]),
    "gelu_tanh": (lambda lib, x: nnf(lib).gelu(x, approximate="tanh"), [randn(4, 50) * 3]),
    "erf": (lambda lib, x: lib.erf(x), [randn(3, 40) * 2]),
    "silu": (lambda lib, x: nnf(lib).silu(x), [randn(3, 4)]),
    "leaky_relu": (lambda lib, x: nnf(lib).leaky_relu(x, 0.1), [randn(3, 4)]),
    "softmax": (lambda lib, x: nnf(lib).softmax(x, dim=1), [randn(3, 6)]),
    "log_softmax": (lambda lib, x: nnf(lib).log_softmax(x, dim=0), [randn(3, 6)]),
    "linear": (lambda lib, x, w, b: nnf(lib).linear(x, w, b), [randn(5, 3), randn(4, 3), randn(4)]),
    "cross_entropy": (lambda lib, x, t: nnf(lib).cross_entropy(x, t), [*_logits_targets()]),
    "cross_entropy_sum": (lambda lib, x, t: nnf(lib).cross_entropy(x, t, reduction="sum"),
                          [*_logits_targets()]),
    "cross_entropy_none": (lambda lib, x, t: nnf(lib).cross_entropy(x, t, reduction="none"),
                           [*_logits_targets()]),
    "cross_entropy_ignore": (lambda lib, x, t: nnf(lib).cross_entropy(x, t, ignore_index=2),
                             [randn(8, 4), np.array([0, 2, 1, 2, 3, 0, 2, 1])]),
    "cross_entropy_weight": (
        lambda lib, x, t, w: nnf(lib).cross_entropy(x, t, weight=w.detach(), ignore_index=1),
        [randn(8, 4), np.array([0, 2, 1, 2, 3, 0, 3, 1]), np.array([1, 2, 0.5, 3], np.float32)]),
    # a target not computed yet: the general path (masks and counts in the graph)
    "cross_entropy_lazy_target": (lambda lib, x, t: nnf(lib).cross_entropy(x, t + 0), [*_logits_targets()]),
    "cross_entropy_1d": (lambda lib, x, t: nnf(lib).cross_entropy(x, t), [randn(5), np.array(3)]),
    "cross_entropy_spatial": (lambda lib, x, t: nnf(lib).cross_entropy(x, t),
                              [randn(2, 4, 3, 3), rng.integers(0, 4, (2, 3, 3))]),
    "cross_entropy_probs": (lambda lib, x, p: nnf(lib).cross_entropy(x, p.softmax(1)),
                            [randn(4, 5), randn(4, 5)]),
    "nll_loss": (lambda lib, x, t: nnf(lib).nll_loss(x.log_softmax(1), t), [*_logits_targets()]),
    "mse_loss": (lambda lib, x, y: nnf(lib).mse_loss(x, y), [randn(4, 3), randn(4, 3)]),
    "mse_loss_sum": (lambda lib, x, y: nnf(lib).mse_loss(x, y, reduction="sum"), [randn(4, 3), randn(4, 3)]),
    "l1_loss": (lambda lib, x, y: nnf(lib).l1_loss(x, y), [randn(4, 3), randn(4, 3)]),
    "bce_with_logits": (lambda lib, x, y: nnf(lib).binary_cross_entropy_with_logits(x, y),
                        [randn(4, 3) * 30, rng.uniform(0, 1, (4, 3)).astype(np.float32)]),
    "bce_with_logits_weights": (
        lambda lib, x, y, w, pw: nnf(lib).binary_cross_entropy_with_logits(x, y, w.detach(),
                                                                            pos_weight=pw.detach()),
        [randn(4, 3), rng.uniform(0, 1, (4, 3)).astype(np.float32), randn(3), np.abs(randn(3))]),
    "bce": (lambda lib, x, y: nnf(lib).binary_cross_entropy(x.sigmoid(), y),
            [randn(4, 3), rng.uniform(0, 1, (4, 3)).astype(np.float32)]),
    "layer_norm": (lambda lib, x, w, b: nnf(lib).layer_norm(x, (3, 4), w, b),
                   [randn(2, 3, 4) * 3 + 1, randn(3, 4), randn(3, 4)]),
    "layer_norm_plain": (lambda lib, x: nnf(lib).layer_norm(x, (6,), eps=1e-3), [randn(5, 6)]),
    "embedding": (lambda lib, i, w: nnf(lib).embedding(i, w), [np.array([[1, 3], [3, 0]]), randn(5, 2)]),
    "embedding_padding": (lambda lib, i, w: nnf(lib).embedding(i, w, padding_idx=3),
                          [np.array([[1, 3], [3, 0]]), randn(5, 2)]),
    "pad": (lambda lib, x: nnf(lib).pad(x, (1, 2, 0, 1), value=-1.5), [randn(2, 3, 4)]),
    "pad_crop": (lambda lib, x: nnf(lib).pad(x, (-1, 2)), [randn(2, 5)]),
    "conv2d": (lambda lib, x, w, b: nnf(lib).conv2d(x, w, b),
               [randn(2, 3, 6, 5), randn(4, 3, 3, 3), randn(4)]),
    "conv2d_stride_pad_dilation": (
        lambda lib, x, w: nnf(lib).conv2d(x, w, stride=(1, 2), padding=(2, 1), dilation=(2, 1)),
        [randn(2, 2, 7, 8), randn(3, 2, 3, 2)]),
    "conv2d_same_unbatched": (lambda lib, x, w: nnf(lib).conv2d(x, w, padding="same"),
                              [randn(2, 5, 5), randn(3, 2, 4, 3)]),
    "max_pool2d": (lambda lib, x: nnf(lib).max_pool2d(x, 2), [randn(2, 3, 6, 6)]),
    "max_pool2d_stride_pad": (lambda lib, x: nnf(lib).max_pool2d(x, 3, stride=2, padding=1),
                              [randn(2, 2, 7, 8)]),
    "max_pool2d_ceil": (lambda lib, x: nnf(lib).max_pool2d(x, (2, 3), stride=2, ceil_mode=True),
                        [randn(1, 2, 7, 8)]),
    "max_pool2d_ties": (lambda lib, x: nnf(lib).max_pool2d(x, 2, stride=1),
                        [np.round(randn(1, 1, 5, 5))]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_matches_pytorch(name):
    fn, arrays = FUNCTIONAL[name]
    assert_match_torch(fn, *arrays, rtol=2e-5, atol=2e-6)


def test_functional_float64_matches_pytorch():
    # float64 erf is libm's (float32 is a polynomial): same results to double precision.
    for name in ("gelu", "erf"):
        fn, arrays = FUNCTIONAL[name]
        arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
        assert_match_torch(fn, *arrays, rtol=1e-10, atol=1e-12)


def test_functional_errors():
    x = llgrad.randn(3, 4)
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(x, llgrad.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="Expected target size"):
        F.nll_loss(x, llgrad.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="expected input with shape"):
        F.layer_norm(x, (3,))
    with pytest.raises(RuntimeError, match="to have 2 channels"):
        F.conv2d(llgrad.randn(1, 3, 5, 5), llgrad.randn(2, 2, 3, 3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(x, x, reduction="avg")


# -- gradients against finite differences (float64) ------------------------------------------------

def test_conv2d_gradients_match_finite_differences():
    r = np.random.default_rng(11)
    check_gradients(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
                    r.standard_normal((1, 2, 4, 5)), r.standard_normal((2, 2, 3, 2)), r.standard_normal(2))


def test_max_pool2d_gradients_match_finite_differences():
    r = np.random.default_rng(12)
    check_gradients(lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
                    r.standard_normal((1, 2, 6, 5)))


def test_special_function_gradients_match_finite_differences():
    x = np.random.default_rng(13).standard_normal((3, 5)) * 2
    check_gradients(lambda t: llgrad.erf(t), x)
    check_gradients(lambda t: F.gelu(t), x)
    check_gradients(lambda t: F.gelu(t, approximate="tanh"), x)
    check_gradients(lambda t, w, b: F.layer_norm(t, (5,), w, b), x, x[0] + 1, x[1])


def test_erf_float32_accuracy():
    x = np.concatenate([np.linspace(-6, 6, 4001), np.logspace(-20, 1, 200), [0.0, np.inf, -np.inf]])
    got = llgrad.erf(llgrad.tensor(x.astype(np.float32))).numpy().astype(np.float64)
    ref = np.array([math.erf(v) for v in x.astype(np.float32)])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=0)
    assert np.isnan(llgrad.erf(llgrad.tensor([np.nan])).item())


# -- layers trained against PyTorch ---------------------------------------------------------------------

def _xent(lib, target):
    return lambda out: lib.nn.functional.cross_entropy(out, target)


def _bce_mse(lib, target):
    return lambda out: (lib.nn.functional.binary_cross_entropy_with_logits(out, target)
                        + lib.nn.MSELoss()(out, target))


def _nll(lib, target):
    return lambda out: lib.nn.NLLLoss()(out, target)


CLASSES = rng.integers(0, 3, 8)
# Few models, many layers each: every distinct graph costs a compile.
LAYERS = {
    "mlp": (lambda n: n.Sequential(n.Linear(6, 8), n.Tanh(), n.GELU(), n.LayerNorm(8), n.Dropout(0.5),
                                   n.Linear(8, 8), n.GELU("tanh"), n.Sigmoid(), n.ReLU(),
                                   n.Linear(8, 3)).eval(),  # eval: dropout is the identity
            randn(8, 6), _xent, CLASSES),
    "cnn": (lambda n: n.Sequential(n.Conv2d(2, 3, 3, padding=1), n.ReLU(), n.MaxPool2d(2),
                                   n.Conv2d(3, 4, 3, stride=2, padding=1), n.Flatten(), n.Linear(16, 3)),
            randn(8, 2, 8, 8), _xent, CLASSES),
    "embedding": (lambda n: n.Sequential(n.Embedding(10, 3, padding_idx=0), n.Flatten(), n.Linear(12, 3),
                                         n.LogSoftmax(dim=1)),
                  rng.integers(0, 10, (8, 4)), _nll, CLASSES),
    "bce_mse": (lambda n: n.Linear(6, 2),
                randn(8, 6), _bce_mse, rng.uniform(0, 1, (8, 2)).astype(np.float32)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_trains_like_pytorch(name):
    torch = torch_or_skip()
    build, x, loss, target = LAYERS[name]
    llgrad.manual_seed(3)
    model, torch_model = build(nn), build(torch.nn)
    copy_weights(model, torch_model, torch)
    losses, torch_losses = train_side_by_side(
        model, torch_model, lambda p: llgrad.optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1),
        loss(llgrad, llgrad.tensor(target)), loss(torch, torch.tensor(target)),
        [llgrad.tensor(x)], [torch.tensor(x)])
    np.testing.assert_allclose(losses, torch_losses, rtol=2e-5, atol=1e-6)
    assert losses[-1] < losses[0]  # it learns
    assert_same_parameters(model, torch_model)

"""Views and movement: index arithmetic (no copy kernels), PyTorch's view/copy rules,
indexing (basic and advanced), cat/stack/split, and gradients through all of them."""

import llgrad
import numpy as np
import pytest
from oracles import assert_match_torch, check_gradients

RNG = np.random.default_rng(1)
A = RNG.standard_normal((3, 4, 5))


VIEW_CASES = {
    "reshape": lambda L, x: x.reshape(12, 5),
    "view": lambda L, x: x.view(-1, 20),
    "flatten": lambda L, x: x.flatten(1),
    "permute": lambda L, x: x.permute(2, 0, 1),
    "transpose": lambda L, x: x.transpose(0, 2),
    "t_2d": lambda L, x: x[0].t(),
    "T_2d": lambda L, x: x[1].T,
    "unsqueeze": lambda L, x: x.unsqueeze(1),
    "squeeze": lambda L, x: x[:, :1].squeeze(),
    "squeeze_dim": lambda L, x: x[:, :1].squeeze(1),
    "expand": lambda L, x: x[:, :1, :].expand(3, 6, 5),
    "expand_as": lambda L, x: x[:1].expand_as(x),
    "int": lambda L, x: x[1],
    "slices": lambda L, x: x[1:, ::2, -3:],
    "ellipsis_none": lambda L, x: x[..., None, 2],
    "negative_int": lambda L, x: x[-1, -2],
    "advanced": lambda L, x: x[L.tensor([2, 0, 2])],
    "advanced_mid": lambda L, x: x[:, L.tensor([[1, 3], [0, 0]])],
    "advanced_pair": lambda L, x: x[L.tensor([0, 2]), :, L.tensor([4, 1])],
    "advanced_list": lambda L, x: x[[1, 1, 0]],
    "negative_index_tensor": lambda L, x: x[L.tensor([-1, 0])],
    "mask": lambda L, x: x[x > 0.5],
    "mask_rows": lambda L, x: x[L.tensor([True, False, True])],
    "cat": lambda L, x: L.cat([x, x[:, :2] * 2], dim=1),
    "stack": lambda L, x: L.stack([x[0], x[1] + 1], dim=1),
    "split": lambda L, x: x.split(2, dim=1)[1] * x.split([1, 3], dim=1)[0],
    "chunk": lambda L, x: x.chunk(2, dim=2)[0],
    "unbind": lambda L, x: x.unbind(1)[2],
    "narrow": lambda L, x: x.narrow(2, 1, 3),
    "flip": lambda L, x: x.flip(0, 2),
    "contiguous": lambda L, x: x.transpose(0, 1).contiguous(),
    "reshape_of_transpose": lambda L, x: x.transpose(1, 2).reshape(3, 20),
}


@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_view_matches_torch(name):
    assert_match_torch(VIEW_CASES[name], A.astype(np.float32))


@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_view_gradient_finite_differences(name):
    fn = VIEW_CASES[name]
    if name == "mask":  # the mask depends on the values being perturbed
        mask = llgrad.tensor(A > 0.5)
        check_gradients(lambda x: x[mask] * x[mask], A)
        return
    check_gradients(lambda x: fn(llgrad, x) * 1.5, A)


def test_views_share_storage_and_report_strides_like_torch():
    torch = pytest.importorskip("torch")
    for name, fn in VIEW_CASES.items():
        lt, tt = fn(llgrad, llgrad.tensor(A)), fn(torch, torch.tensor(A))
        assert lt.is_contiguous() == tt.is_contiguous(), name
        assert (lt._base is not None) == (tt._base is not None), name
        if tt._base is not None:
            assert lt.stride() == tt.stride(), name
            assert lt.storage_offset() == tt.storage_offset(), name


def test_view_of_non_viewable_layout_raises_and_reshape_copies():
    x = llgrad.tensor(A[0])
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.t().view(-1)
    r = x.t().reshape(-1)
    assert r._base is None and r.grad_fn is None
    y = llgrad.tensor(A[0], requires_grad=True)
    assert y.t().reshape(-1).grad_fn.name() == "UnsafeViewBackward0"
    assert y.reshape(-1).grad_fn.name() == "ViewBackward0"


def test_negative_step_and_out_of_range_errors():
    x = llgrad.tensor(A)
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[3]
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 1 with size 4"):
        x[:, llgrad.tensor([0, 7])]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0, 0]
    with pytest.raises(IndexError, match="tensors used as indices must be long"):
        x[llgrad.tensor([0.0])]


def test_views_expands_and_transposes_make_no_copy_kernels():
    x = llgrad.rand(64, 32)
    b = llgrad.rand(32)

    def total():  # no tensor holds the sum's operand: only the sum is computed
        return (x.t().reshape(32, 64).t() + b.unsqueeze(0).expand(64, 32)).permute(1, 0)[:, 3:60:2].sum()

    prog = llgrad.debug.program(total())
    assert len(prog.kernels) == 1  # views are index arithmetic inside the one reduction kernel
    assert [b.role for b in prog.schedule.bufs].count("tmp") == 0
    ref = ((x.numpy().T.reshape(32, 64).T + b.numpy()).T)[:, 3:60:2].sum()
    np.testing.assert_allclose(total().item(), ref, rtol=1e-5)


def test_repeated_advanced_indices_accumulate_gradients():
    x = llgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[llgrad.tensor([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_setitem_and_inplace_through_views():
    torch = pytest.importorskip("torch")

    def program(L):
        w = L.zeros(3, 4)
        w[1] = 5.0
        w[:, 0] = L.tensor([1.0, 2.0, 3.0])
        w[L.tensor([0, 2]), 3] = -1.0
        w[w > 4] = 7.0
        v = w[2]
        v.mul_(2)
        w.t()[1].add_(10)
        w[..., 2:] += 1
        return w

    np.testing.assert_array_equal(program(llgrad).numpy(), program(torch).numpy())


def test_gradients_through_inplace_on_views():
    torch = pytest.importorskip("torch")
    data = RNG.standard_normal((3, 4)).astype(np.float32)
    grads = []
    for L in (llgrad, torch):
        x = L.tensor(data, requires_grad=True)
        y = L.tensor(data[0] * 2, requires_grad=True)
        a = x * 1.0
        a[1] = y * 3
        a[:, 2].mul_(a[:, 0].clone())
        v = a[0]
        v.exp_()
        (a * a).sum().backward()
        assert type(a.grad_fn).__name__ == "CopySlices"
        grads.append((x.grad.numpy(), y.grad.numpy(), a.detach().numpy()))
    for mine, theirs in zip(*grads):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_saved_view_modified_through_another_view_fails_like_torch():
    torch = pytest.importorskip("torch")
    for L in (llgrad, torch):
        x = L.ones(3, 4, requires_grad=True)
        a = x * 1.0
        a[:, 2].mul_(a[:, 0])  # MulBackward0 saves the view a[:, 0] ...
        a[0].exp_()  # ... which this changes
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            (a * a).sum().backward()


def test_views_see_inplace_changes_of_their_base():
    x = llgrad.zeros(2, 3)
    row = x[1]
    col = x.t()[2]
    x.add_(1)
    x[1, 2] = 9.0
    assert row.tolist() == [1.0, 1.0, 9.0]
    assert col.tolist() == [1.0, 9.0]
    assert x._version == row._version == 2


def test_backward_reshapes_gradients_a_view_cannot_express():
    # The VJP of a copying reshape reshapes a permuted gradient: that must be a copy, not a view.
    torch = pytest.importorskip("torch")
    data = RNG.standard_normal((4, 6)).astype(np.float32)
    grads = []
    for L in (llgrad, torch):
        x = L.tensor(data, requires_grad=True)
        y = x.t().reshape(3, 8).permute(1, 0)[1:7:2]
        (y * L.arange(3.0)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(*grads)

"""Minimal regression tests for the bugs differential fuzzing found (tests/test_fuzz.py).

Each is the shrunk graph the fuzzer reported, reduced by hand to the lines that matter,
with the value PyTorch gives.
"""

import llgrad
import numpy as np
import pytest


def test_reading_a_computed_advanced_index_again():
    # The scheduler looked at the source of an `index` node that had already been computed
    # (and had dropped its sources): IndexError at compile time.
    x = llgrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = x[llgrad.tensor([1, 0])]
    assert y.tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert (y * 2).sum().item() == 20.0


def test_argmin_fused_into_a_float_consumer():
    # The loop IR typed an argmin/argmax accumulator's value as the compared dtype (float)
    # instead of int64: `argmin + float` failed in LLVM codegen.
    x = llgrad.tensor([[3.0, 1.0], [2.0, 5.0]], dtype=llgrad.float64)
    assert (x.argmin(0, keepdim=True) + llgrad.tensor(0.5, dtype=llgrad.float64)).tolist() == [[1.5, 0.5]]
    assert (x.argmax(1) * 2.5).tolist() == [0.0, 2.5]


def test_int32_prod_accumulates_in_int64():
    # prod of int32 returns int64 (as sum does) but accumulated in int32, wrapping around.
    x = llgrad.tensor(np.array([100000, 100000, 3], dtype=np.int32))
    assert x.prod().dtype is llgrad.int64
    assert x.prod().item() == 30_000_000_000
    assert x.prod(0).item() == 30_000_000_000


def test_sign_of_nan_is_zero_and_abs_gradient_at_nan():
    # torch.sign(nan) is 0 (llgrad kept NaN), so abs' gradient at NaN is 0 too.
    x = llgrad.tensor([float("nan"), -0.0, -2.0, float("inf")], requires_grad=True)
    assert llgrad.sign(x.detach()).tolist() == [0.0, 0.0, -1.0, 1.0]
    x.abs().sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, -1.0, 1.0]


def test_softmax_family_over_an_empty_dim():
    # Their decompositions took a max over the empty dim, which raises: compiling failed.
    x = llgrad.zeros((5, 0, 2), requires_grad=True)
    assert x.softmax(1).shape == (5, 0, 2)
    assert x.log_softmax(-2).shape == (5, 0, 2)
    lse = llgrad.logsumexp(x, 1)
    assert lse.tolist() == [[float("-inf")] * 2] * 5
    (x.softmax(1).sum() + x.log_softmax(1).sum()).backward()
    assert x.grad.shape == (5, 0, 2)


def test_var_and_std_gradients_without_degrees_of_freedom():
    # correction >= the number of reduced elements: var's backward divided by zero in Python
    # (ZeroDivisionError). PyTorch divides by N - correction unclamped; these are its values.
    def grads(n, c, fn):
        x = llgrad.arange(1.0, n + 1, dtype=llgrad.float64, requires_grad=True)
        fn(x, c).backward()
        return x.grad.tolist()

    def var(x, c):
        return x.var(0, correction=c)

    def std(x, c):
        return x.std(0, correction=c)

    assert grads(2, 2, var) == [-np.inf, np.inf]
    assert grads(3, 5, var) == [1.0, 0.0, -1.0]
    assert np.isnan(grads(1, 1, var)).all()
    assert np.isnan(grads(2, 2, std)).all()
    assert grads(3, 5, std) == [0.0, 0.0, 0.0]


def test_cat_gives_a_gradient_to_a_skipped_empty_tensor():
    # cat skips 1-d empty tensors (legacy rule) but PyTorch still gives them an empty .grad.
    x = llgrad.zeros((0,), requires_grad=True)
    y = llgrad.ones((2, 3), requires_grad=True)
    llgrad.cat([y, x]).sum().backward()
    assert x.grad is not None and tuple(x.grad.shape) == (0,)
    assert y.grad.tolist() == [[1.0] * 3] * 2


def test_amax_amin_gradient_of_a_nan_slice_is_nan():
    # PyTorch's amax/amin backward is grad / count(x == out) * (x == out): a slice whose max
    # is NaN has no match, so its whole gradient is NaN. llgrad shared it among the NaNs, as
    # PyTorch does for the whole-tensor max() only.
    def grad(fn):
        x = llgrad.tensor([[1.0, float("nan"), 3.0], [2.0, 5.0, 5.0]], requires_grad=True)
        fn(x).sum().backward()
        return np.array(x.grad.tolist())

    nan = np.nan
    np.testing.assert_array_equal(grad(lambda x: x.amax(1)), [[nan, nan, nan], [0.0, 0.5, 0.5]])
    np.testing.assert_array_equal(grad(lambda x: x.amin(1)), [[nan, nan, nan], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(grad(lambda x: x.max()), [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_select_method_and_function():
    # Tensor.select / torch.select were missing (the op existed, for x[i]).
    x = llgrad.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = x.select(1, -1)
    assert y.tolist() == [3.0, 6.0] and type(y.grad_fn).__name__ == "SelectBackward0"
    assert llgrad.select(x, 0, 1).tolist() == [4.0, 5.0, 6.0]


def test_zero_dim_integer_tensor_index_is_a_view():
    # PyTorch reads a 0-d integer tensor index as an int: x[t] is a select view (it shares
    # memory, grad_fn SelectBackward0); llgrad gathered a copy.
    x = llgrad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    i = llgrad.tensor(-1)
    y = x[i]
    assert y.tolist() == [3.0, 4.0] and type(y.grad_fn).__name__ == "SelectBackward0"
    assert type(x[:, llgrad.tensor(0, dtype=llgrad.int32)].grad_fn).__name__ == "SelectBackward0"
    base = llgrad.zeros(3)
    view = base[llgrad.tensor(1)]
    view.add_(5)
    assert base.tolist() == [0.0, 5.0, 0.0]


def test_full_basic_index_makes_a_new_view():
    # x[:], x[:, :] and x[...] returned x itself; PyTorch returns a new view (SliceBackward0 for
    # a lone slice, AliasBackward0 when the index selects everything), not a leaf.
    x = llgrad.ones((2, 3), requires_grad=True)
    for index, name in ((slice(None), "SliceBackward0"), ((slice(None), slice(None)), "AliasBackward0"),
                        (Ellipsis, "AliasBackward0"), ((), "AliasBackward0")):
        y = x[index]
        assert y is not x and not y.is_leaf and type(y.grad_fn).__name__ == name, index
    y = x[...] * 2
    y.sum().backward()
    assert x.grad.tolist() == [[2.0] * 3] * 2
    base = llgrad.zeros(3)
    alias = base[...]
    alias.add_(1)
    assert base.tolist() == [1.0] * 3 and alias.stride() == (1,)


def test_reshape_of_a_non_contiguous_view_is_a_reshape_alias():
    # PyTorch's reshape views a contiguous tensor (ViewBackward0) but aliases a non-contiguous
    # one it can still view (ReshapeAliasBackward0); llgrad named both ViewBackward0.
    x = llgrad.ones((4, 6), requires_grad=True)
    assert type(x.reshape(6, 4).grad_fn).__name__ == "ViewBackward0"
    assert type(x[::2].reshape(-1, 6).grad_fn).__name__ == "ReshapeAliasBackward0"
    assert type(x.t().reshape(6, 2, 2).grad_fn).__name__ == "ReshapeAliasBackward0"
    y = x.t().reshape(6, 2, 2)
    (y * 3).sum().backward()
    assert x.grad.tolist() == [[3.0] * 6] * 4


def test_reductions_over_dim_0_of_a_0d_tensor():
    # x.sum(0) of a 0-d tensor normalized dim 0 to an axis the tensor lacks: every reduction
    # with a dim crashed while compiling. PyTorch reduces over nothing (SumBackward1 etc.).
    cases = {"sum": lambda x: x.sum(0), "keepdim": lambda x: x.sum(-1, keepdim=True),
             "mean": lambda x: x.mean(0), "amax": lambda x: x.amax(0), "max": lambda x: x.max(0).values,
             "min": lambda x: x.min(-1, keepdim=True).values, "prod": lambda x: x.prod(0),
             "logsumexp": lambda x: x.logsumexp(0), "norm": lambda x: x.norm(2, 0)}
    for name, fn in cases.items():
        x = llgrad.tensor(-0.8, dtype=llgrad.float64, requires_grad=True)
        y = fn(x)
        assert y.shape == () and abs(y.item() - (0.8 if name == "norm" else -0.8)) < 1e-12, name
        y.backward()
        assert x.grad.item() == (-1.0 if name == "norm" else 1.0), name
    x = llgrad.tensor(-0.8, dtype=llgrad.float64)
    assert x.argmax(0).item() == 0 and x.var(0, correction=0).item() == 0.0


def test_std_gradient_where_std_is_zero():
    # PyTorch masks a zero std in std's backward (gradient 0); llgrad divided by it (NaN).
    x = llgrad.tensor([[1.0, 1.0], [1.0, 2.0]], requires_grad=True)
    x.std(1).sum().backward()
    np.testing.assert_allclose(x.grad.tolist(), [[0.0, 0.0], [-0.70710677, 0.70710677]], rtol=1e-6)
    y = llgrad.tensor(-0.8, requires_grad=True)
    y.std(0, correction=0).backward()
    assert y.grad.item() == 0.0


def test_full_slices_inside_a_tuple_index_are_skipped_like_pytorch():
    # PyTorch skips a slice starting at 0 with step 1 that reaches the end (x[:, :2] of a size-1
    # dim), so an index of only such slices is an alias; llgrad recorded the slice.
    x = llgrad.ones((2, 1, 3), requires_grad=True)
    names = {"x[:, :2]": "AliasBackward0", "x[:, 0:]": "AliasBackward0", "x[:, :1, :3]": "AliasBackward0",
             "x[:, -1:]": "SliceBackward0", "x[:, :-0]": "SliceBackward0",
             "x[:, 1:, 0:3:1]": "SliceBackward0"}
    for text, name in names.items():
        assert type(eval(text, {"x": x}).grad_fn).__name__ == name, text


def test_advanced_index_assignment_requires_matching_dtypes():
    # PyTorch's index_put refuses a value tensor of another dtype; llgrad cast it silently.
    x = llgrad.ones(3)
    with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match"):
        x[llgrad.tensor([0, 1])] = llgrad.tensor([5, 6])
    x[llgrad.tensor([0, 1])] = 5  # a Python number is converted
    x[0:2] = llgrad.tensor([7, 8])  # and basic indexing copies (casting), as in PyTorch
    assert x.tolist() == [7.0, 8.0, 1.0]


def test_views_regenerated_after_an_inplace_write_are_as_strided():
    # PyTorch rebuilds the history of a view written in place (or of another view of the same
    # base) as AsStridedBackward0 over the base's CopySlices; llgrad kept the view op's name.
    x = llgrad.ones((3, 3), requires_grad=True)
    y = x.clone()
    v, w = y[0], y[:, 1:]
    v.add_(1)
    assert type(v.grad_fn).__name__ == "AsStridedBackward0" and type(y.grad_fn).__name__ == "CopySlices"
    w.mul_(2)
    assert type(w.grad_fn).__name__ == type(v.grad_fn).__name__ == "AsStridedBackward0"
    assert type(y[1].grad_fn).__name__ == "SelectBackward0"  # a view made afterwards is an ordinary one
    (v.sum() + w.sum()).backward()
    assert x.grad.tolist() == [[1.0, 4.0, 4.0], [0.0, 2.0, 2.0], [0.0, 2.0, 2.0]]  # (w overlaps v)


def test_inplace_on_max_values_does_not_break_backward():
    # max(dim)'s backward needs the arg max, not the values it returned; llgrad also saved the
    # values, so changing them in place made backward raise where PyTorch computes.
    x = llgrad.tensor([[1.0, 3.0], [4.0, 2.0]], requires_grad=True)
    m = x.max(1).values
    m.sub_(1)
    m.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    y = x.max()  # the whole-tensor max() does save its result, as PyTorch's does
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_inplace_result_cast_down_within_its_kind():
    # In-place ops cast the result to the target's dtype when PyTorch can: float64 into float32,
    # int64 into int32. llgrad refused every promotion that was not the target's own dtype.
    x = llgrad.ones(2)
    x.add_(llgrad.tensor([0.5, 1.5], dtype=llgrad.float64))
    assert x.dtype is llgrad.float32 and x.tolist() == [1.5, 2.5]
    i = llgrad.ones(2, dtype=llgrad.int32)
    i.mul_(llgrad.tensor([3, 4]))
    assert i.dtype is llgrad.int32 and i.tolist() == [3, 4]
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Int"):
        i.add_(0.5)


def test_copy_into_a_whole_tensor_is_copy_backwards():
    # x.copy_(y), x[:] = y and x[:, :] = y: PyTorch's node is CopyBackwards (llgrad named the
    # cast it records, ToCopyBackward0); a view's base still gets CopySlices.
    y = llgrad.ones(2, requires_grad=True)
    for write in (lambda x: x.copy_(y), lambda x: x.__setitem__(slice(None), y),
                  lambda x: x.__setitem__((slice(None), slice(None)), y * 2)):
        x = llgrad.zeros(2, 2)
        write(x)
        assert type(x.grad_fn).__name__ == "CopyBackwards"
    z = y * 3
    z.copy_(llgrad.ones(2))
    assert type(z.grad_fn).__name__ == "CopyBackwards"
    x = llgrad.zeros(2, 2)
    x[0] = y
    assert type(x.grad_fn).__name__ == "CopySlices"
    x.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0]


def test_inplace_op_that_casts_keeps_its_own_node_name():
    # x32.mul_(y64): PyTorch's node is MulBackward0 (the cast back to float32 is part of it);
    # llgrad showed the ToCopyBackward0 of the cast it records.
    x = llgrad.ones(2, requires_grad=True).clone()
    y = llgrad.tensor([2.0, 3.0], dtype=llgrad.float64, requires_grad=True)
    x.mul_(y)
    assert type(x.grad_fn).__name__ == "MulBackward0" and x.dtype is llgrad.float32
    x.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0] and y.grad.dtype is llgrad.float64


def test_inplace_on_the_input_of_max_along_a_dim():
    # PyTorch's max/min along a dim save only the indices, so the input may change in place
    # afterwards; llgrad recomputes the indices from the input and checked its version.
    x = llgrad.tensor([[1.0, 2.0], [3.0, 0.0]], dtype=llgrad.float64, requires_grad=True)
    y = x + 1
    m = y.min(-2, keepdim=True).values
    y.mul_(2)
    m.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_overwriting_copy_keeps_the_old_history_with_zero_gradient():
    # y.copy_(src) or y[:] = src with src requiring grad: PyTorch's node still leads to y's old
    # history, which gets zeros (x.grad is zeros, not None); llgrad dropped that edge.
    for write in (lambda y, s: y.copy_(s), lambda y, s: y.__setitem__(slice(None), s)):
        x = llgrad.tensor([1.0, 2.0], requires_grad=True)
        src = llgrad.tensor([5.0, 6.0], requires_grad=True)
        y = x * 2
        write(y, src)
        assert y.tolist() == [5.0, 6.0]
        y.sum().backward()
        assert x.grad is not None and x.grad.tolist() == [0.0, 0.0]
        assert src.grad.tolist() == [1.0, 1.0]


def test_fill_zero_and_scalar_assignment_node_names():
    # PyTorch names fill_(number) FillBackward2, fill_(0-d tensor) and y[...] = number
    # FillBackward3, zero_() ZeroBackward0; llgrad showed AddBackward0 or CopyBackwards.
    x = llgrad.tensor([1.0, 2.0], requires_grad=True)
    cases = {"FillBackward2": lambda y: y.fill_(2), "ZeroBackward0": lambda y: y.zero_(),
             "FillBackward3": lambda y: y.__setitem__(Ellipsis, 2.5),
             "CopyBackwards": lambda y: y.copy_(llgrad.tensor([2.0, 3.0]))}
    for name, write in cases.items():
        y = x * 2
        write(y)
        assert type(y.grad_fn).__name__ == name
    y = x * 2
    y.fill_(llgrad.tensor(4.0))
    y[:] = llgrad.tensor(3.0)
    assert type(y.grad_fn).__name__ == "FillBackward3" and y.tolist() == [3.0, 3.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


def test_split_and_chunk_of_an_empty_dim():
    # split of a size-0 dim returned no pieces (so x.split(1, 1)[0] raised IndexError); PyTorch
    # returns one empty piece, and chunk(n) returns n of them.
    x = llgrad.ones((1, 0), requires_grad=True)
    assert [tuple(t.shape) for t in x.split(1, 1)] == [(1, 0)]
    assert [tuple(t.shape) for t in x.split(2, 1)] == [(1, 0)]
    assert [tuple(t.shape) for t in x.chunk(3, 1)] == [(1, 0)] * 3
    x.split(1, 1)[0].sum().backward()
    assert tuple(x.grad.shape) == (1, 0)


def test_clamp_gradient_with_tensor_bounds_that_cross():
    # clamp(x, min=lo, max=hi) with lo > hi is hi everywhere: its gradient goes to hi only.
    # llgrad also gave it to lo where x < lo (so twice when lo and hi are one tensor).
    # Values and gradients (x, lo, hi) as PyTorch computes them, including its lo == hi rule.
    cases = [((1.0, 0.0, 0.5), (0.0, 0.0, 1.0)), ((1.0, 0.0, -1.0), (0.0, 0.0, 1.0)),
             ((1.0, 0.0, 2.0), (0.0, 0.0, 1.0)), ((0.5, 0.5, 0.0), (0.0, 0.0, 0.0)),
             ((0.5, 0.5, 1.0), (0.0, 0.0, 1.0)), ((0.0, 1.0, 0.5), (1.0, 0.0, 0.0))]
    for (lo, hi, x), expected in cases:
        t, low, high = (llgrad.tensor(v, requires_grad=True) for v in (x, lo, hi))
        llgrad.clamp(t, min=low, max=high).backward()
        assert (t.grad.item(), low.grad.item(), high.grad.item()) == expected, (lo, hi, x)


def test_full_var_gradient_without_degrees_of_freedom():
    # For a full reduction (no dim, or a 0-d input) with N - correction <= 0, PyTorch's var
    # backward is grad * inf, NaN where x equals the mean; along a dim it divides by N - correction.
    def grad(values, fn):
        x = llgrad.tensor(values, dtype=llgrad.float64, requires_grad=True)
        fn(x).backward()
        return x.grad.tolist()

    inf = float("inf")
    assert grad([1.0, 2.0], lambda x: x.var(correction=2)) == [inf, inf]
    assert grad([1.0, 2.0], lambda x: x.var(correction=3)) == [inf, inf]
    assert grad([1.0, 2.0], lambda x: x.var(0, correction=3)) == [1.0, -1.0]
    assert np.isnan(grad([1.0, 1.0], lambda x: x.var(correction=2))).all()
    assert np.isnan(grad([1.0, 2.0], lambda x: x.std(correction=2))).all()
    assert np.isnan(grad(1.68, lambda x: x.var(-1, correction=2)))
    assert grad(1.5, lambda x: x.var(0, correction=0)) == 0.0


def test_flip_of_a_reshaped_expand_reads_in_bounds():
    # Index arithmetic is floor division and remainder; codegen used truncating sdiv/srem when
    # the operand can be negative (flip gives negative strides), assuming such reads were
    # guarded. Unguarded ones read out of bounds: garbage values, or a crash.
    y = llgrad.tensor([1.0, 2.0, 3.0, 4.0])
    assert (y * 2).expand(2, 4).reshape(4, 1, 2).flip(0).tolist() == [[[6.0, 8.0]], [[2.0, 4.0]]] * 2
    x = llgrad.tensor([[1.0], [2.0]])
    assert (x * 1).expand(2, 4).reshape(4, 1, 2).flip(0).tolist() == [[[2.0, 2.0]]] * 2 + [[[1.0, 1.0]]] * 2


def test_clamp_gradient_of_min_alone_sees_max():
    # When only `min` needs a gradient, clamp's backward did not save `max`, so it fell back
    # to the one-bound rule and gave min the gradient even where min > max (result = max).
    x = llgrad.tensor([3.0, -1.0, 2.0])
    lo = llgrad.tensor([1.98, 1.98, 1.98], requires_grad=True)
    hi = llgrad.tensor([0.14, -0.84, 0.91])
    llgrad.clamp(x, min=lo, max=hi).sum().backward()
    assert lo.grad.tolist() == [0.0, 0.0, 0.0]


def test_logsumexp_of_integers_is_float():
    # PyTorch computes logsumexp of integer and bool tensors in the default float dtype;
    # llgrad refused them ("not implemented for 'Long'").
    x = llgrad.tensor([1, 2, 3])
    r = llgrad.logsumexp(x, 0)
    assert r.dtype is llgrad.float32 and abs(r.item() - 3.4076059) < 1e-6
    b = llgrad.logsumexp(llgrad.tensor([True, False]), 0)
    assert b.dtype is llgrad.float32 and abs(b.item() - 1.3132616) < 1e-6


def test_invert_of_integers_is_bitwise():
    # `~x` is bitwise not for integer tensors in PyTorch; llgrad computed logical not (a bool
    # tensor), and accepted floats, which PyTorch refuses.
    assert (~llgrad.tensor([1, -2])).tolist() == [-2, 1]
    inverted = ~llgrad.tensor([1, 2], dtype=llgrad.int32)
    assert inverted.dtype is llgrad.int32 and inverted.tolist() == [-2, -3]
    assert (~llgrad.tensor([True, False])).tolist() == [False, True]
    assert llgrad.bitwise_not(llgrad.tensor([3])).tolist() == [-4]
    with pytest.raises(TypeError, match="integer and Boolean"):
        ~llgrad.tensor([1.5])


def test_backward_of_batched_matrix_vector_after_a_kept_product():
    # simplify's (a @ b).T -> b.T @ a.T rewrite matched the folded product but rebuilt it with
    # the op of the unfolded node (a reshape), which raised while compiling the backward.
    rng = np.random.default_rng(0)
    x0 = llgrad.tensor(rng.normal(size=(2, 3, 2)), requires_grad=True)
    x1 = llgrad.tensor(rng.normal(size=(2, 2, 3)), requires_grad=True)
    x3 = llgrad.tensor(rng.normal(size=3), requires_grad=True)
    v2 = x0 @ x1  # kept alive: computed with v4
    v4 = v2 @ x3
    expected = (x0.detach().numpy() @ x1.detach().numpy()) @ x3.detach().numpy()
    np.testing.assert_allclose(v4.detach().numpy(), expected, rtol=1e-12)
    v4.sum().backward()
    np.testing.assert_allclose(x3.grad.numpy(), v2.detach().numpy().sum(axis=(0, 1)), rtol=1e-12)


def test_pow_saves_its_result_even_if_only_the_base_needs_a_gradient():
    # PyTorch's PowBackward1 saves the result whichever input needs a gradient, so changing
    # it in place makes backward raise; llgrad saved it only for the exponent's gradient.
    x = llgrad.tensor(1.3, requires_grad=True)
    v = x ** llgrad.tensor(2.0)
    v.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        v.backward()


def test_subnormal_products_are_kept_not_flushed():
    # A fuzz campaign reported (prod of rows) @ row @ matrix, all subnormal, off by tens of
    # subnormal steps. llgrad was right: rounding into the subnormal range loses digits, which the
    # reference's error bound did not carry (tests/fuzz/reference.py ETA now does). This pins what
    # makes llgrad right: the GEMM keeps subnormals, it never flushes them to zero.
    rng = np.random.default_rng(5)
    col = (rng.uniform(0.5, 2.0, (256, 1)) * 1e-41).astype(np.float32)
    row = rng.uniform(-2.0, 2.0, (1, 256)).astype(np.float32)
    mat = rng.uniform(-2.0, 2.0, (256, 256)).astype(np.float32)
    outer = llgrad.tensor(col) @ llgrad.tensor(row)  # depth 1: each element one rounded product
    np.testing.assert_array_equal(outer.numpy(), col * row)
    got = (outer @ llgrad.tensor(mat)).numpy().astype(np.float64)
    want = (col * row).astype(np.float64) @ mat
    # each of the 256 products and sums rounds to a subnormal step (2^-149) at worst
    assert np.all(np.abs(got - want) <= 512 * 2.0**-150 + 1e-6 * np.abs(want))
    assert np.count_nonzero(got) > 0.99 * got.size


@pytest.mark.parametrize("name", ["sign", "floor", "ceil", "round", "trunc"])
def test_piecewise_constant_ops_pass_back_exact_zeros(name):
    # PyTorch's backward of these is zeros_like(grad); llgrad computed grad * 0, which is NaN for
    # a NaN or infinite incoming gradient (sign(x) * nan, found by a fuzz campaign) and -0 for a
    # negative one.
    x = llgrad.tensor([0.5, -2.0, 3.0], requires_grad=True)
    getattr(llgrad, name)(x).backward(llgrad.tensor([float("nan"), -1.0, float("inf")]))
    grad = x.grad.numpy()
    assert grad.tolist() == [0.0, 0.0, 0.0] and not np.signbit(grad).any()

"""Edge cases where llgrad once differed from PyTorch: empty reductions, saturated losses,
out-of-range indices and integers, signature errors. NumPy (and PyTorch, when installed)
are the references."""

import llgrad
import numpy as np
import pytest

# -- all() / any() over nothing --------------------------------------------------------------

EMPTY_CASES = [((0,), None, False), ((3, 0), 1, False), ((0, 3), 0, False), ((0, 3), 0, True),
               ((2, 0, 4), (1, 2), False), ((0, 3), None, True), ((2, 0), -1, True)]


@pytest.mark.parametrize("shape, dim, keepdim", EMPTY_CASES)
@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any_over_nothing(name, shape, dim, keepdim):
    got = getattr(llgrad.ones(*shape), name)() if dim is None and not keepdim else \
        getattr(llgrad.ones(*shape), name)(dim=dim, keepdim=keepdim)
    axis = None if dim is None else dim
    want = getattr(np, name)(np.ones(shape, bool), axis=axis, keepdims=keepdim)
    assert got.dtype is llgrad.bool
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_all_any_still_reduce_nonempty_tensors():
    x = llgrad.tensor([[1.0, 0.0], [2.0, 3.0]])
    np.testing.assert_array_equal(x.all(1).numpy(), [False, True])
    np.testing.assert_array_equal(x.any(0).numpy(), [True, True])
    with pytest.raises(IndexError, match="Dimension out of range"):
        llgrad.ones(0, 3).all(dim=5)


# -- indices out of range -------------------------------------------------------------------


@pytest.mark.parametrize("index", [[-1], [0, -3], [3], [[1, 5]]])
def test_embedding_refuses_indices_outside_its_rows(index):
    # A negative index once returned a row counted from the end; PyTorch raises.
    table = llgrad.nn.Embedding(3, 2)
    with pytest.raises(IndexError, match="index out of range in self"):
        table(llgrad.tensor(index))
    with pytest.raises(IndexError, match="index out of range in self"):
        llgrad.nn.functional.embedding(llgrad.tensor(index), llgrad.zeros(3, 2))


def test_embedding_of_valid_and_empty_indices():
    weight = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    table = llgrad.nn.Embedding.from_pretrained(llgrad.tensor(weight))
    np.testing.assert_array_equal(table(llgrad.tensor([2, 0, 2])).numpy(), weight[[2, 0, 2]])
    assert tuple(table(llgrad.tensor([], dtype=llgrad.int64)).shape) == (0, 2)


@pytest.mark.parametrize("values, classes, message", [
    ([-1, 1], 3, "Class values must be non-negative."),
    ([3, 1], 3, "Class values must be smaller than num_classes."),
])
def test_one_hot_refuses_classes_out_of_range(values, classes, message):
    with pytest.raises(RuntimeError, match=message):
        llgrad.nn.functional.one_hot(llgrad.tensor(values), classes)

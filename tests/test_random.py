"""The counter-based random stream (rand_uniform) and dropout: values, statistics, reproducibility."""

from __future__ import annotations

import llgrad
import llgrad.nn as nn
import llgrad.nn.functional as F
import numpy as np
import pytest
from llgrad import random as lrandom

_MASK = (1 << 64) - 1


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def reference_uniform(key: int, counters) -> np.ndarray:
    """SplitMix64 of state mix(key) + (counter + 1) * gamma, top 24 bits: the documented stream."""
    return np.array([(_mix((_mix(key) + (c + 1) * 0x9E3779B97F4A7C15) & _MASK) >> 40) * 2.0**-24
                     for c in counters], dtype=np.float32)


def test_uniform_is_the_documented_counter_based_hash():
    gen = lrandom.Generator(12345)
    first = lrandom.uniform((3, 4), generator=gen).numpy()
    second = lrandom.uniform((5,), generator=gen).numpy()
    np.testing.assert_array_equal(first.ravel(), reference_uniform(12345, range(12)))
    np.testing.assert_array_equal(second, reference_uniform(12345, range(12, 17)))  # the offset advanced
    assert gen.get_state() == (12345, 17)


def test_uniform_statistics():
    u = lrandom.uniform((400_000,), generator=lrandom.Generator(7)).numpy().astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.002
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    chi2 = ((counts - u.size / 20) ** 2 / (u.size / 20)).sum()
    assert chi2 < 50  # 19 degrees of freedom: p < 1e-4 beyond ~45
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01  # neighbouring counters are independent
    f64 = lrandom.uniform((1000,), dtype=llgrad.float64, generator=lrandom.Generator(7)).numpy()
    assert f64.dtype == np.float64 and 0 <= f64.min() and f64.max() < 1
    assert len(np.unique(f64)) == 1000


def test_streams_differ_by_seed_and_by_call():
    a = lrandom.uniform((1000,), generator=lrandom.Generator(1)).numpy()
    b = lrandom.uniform((1000,), generator=lrandom.Generator(2)).numpy()
    assert (a != b).mean() > 0.99
    gen = lrandom.Generator(1)
    first = lrandom.uniform((1000,), generator=gen).numpy()
    again = lrandom.uniform((1000,), generator=gen).numpy()
    assert np.array_equal(first, a) and (first != again).mean() > 0.99


def test_manual_seed_makes_dropout_reproducible():
    x = llgrad.ones(50, 40)
    llgrad.manual_seed(5)
    first, second = F.dropout(x, 0.3).numpy(), F.dropout(x, 0.3).numpy()
    llgrad.manual_seed(5)
    assert np.array_equal(F.dropout(x, 0.3).numpy(), first)
    assert np.array_equal(F.dropout(x, 0.3).numpy(), second)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_zeroes_a_fraction_p_and_scales_the_rest(p):
    llgrad.manual_seed(0)
    x = llgrad.tensor(np.random.default_rng(0).uniform(1, 2, (200, 500)).astype(np.float32))
    out = F.dropout(x, p).numpy()
    kept = out != 0
    assert abs(1 - kept.mean() - p) < 0.005  # 100k elements: std of the fraction < 0.0016
    np.testing.assert_allclose(out[kept], x.numpy()[kept] / (1 - p), rtol=1e-6)


def test_dropout_gradient_uses_the_forward_mask():
    llgrad.manual_seed(1)
    x = llgrad.ones(30, 30, requires_grad=True)
    y = F.dropout(x, 0.4)
    values = y.detach().numpy().copy()  # forward in one program...
    (y * 3).sum().backward()  # ...and the backward in another recomputes the same mask
    np.testing.assert_allclose(x.grad.numpy(), np.where(values != 0, 3 / 0.6, 0.0), rtol=1e-6)


def test_dropout_modes_and_edge_probabilities():
    x = llgrad.randn(4, 5)
    layer = nn.Dropout(0.5)
    assert layer.eval()(x) is x  # identity in eval mode
    assert F.dropout(x, 0.5, training=False) is x and F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()
    y = x.clone()
    F.dropout(y, 0.5, inplace=True)
    assert ((y.numpy() == 0) | np.isclose(y.numpy(), 2 * x.numpy())).all()


def test_new_masks_do_not_recompile():
    scale = nn.Parameter(llgrad.ones(64))
    drop = nn.Dropout(0.5)
    opt = llgrad.optim.SGD([scale], lr=0.1)
    x = llgrad.randn(32, 64)
    masks = []
    for step in range(6):
        if step == 2:
            warm = llgrad.runtime.stats()["compiles"]
        opt.zero_grad()
        hidden = drop(x * scale)
        loss = (hidden * hidden).mean()
        loss.backward()
        opt.step()
        masks.append(hidden.detach().numpy() != 0)
    assert llgrad.runtime.stats()["compiles"] == warm
    assert all((a != b).any() for a, b in zip(masks, masks[1:]))

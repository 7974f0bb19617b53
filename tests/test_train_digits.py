"""Training for real: the digits MLP example reaches a test accuracy it can fail to reach."""

from __future__ import annotations

import pathlib
import sys

import llgrad
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))

import digits_mlp  # noqa: E402
from common import load_digits_data, synthetic_digits_like  # noqa: E402

# Few epochs at a higher learning rate than the example's default: the suite stays fast. Whole
# batches only, so one forward+backward program serves every step.
SETTINGS = dict(epochs=4, batch_size=64, lr=5e-3, drop_last=True, log=lambda line: None)


def _check(result: dict, bound: float) -> None:
    assert result["accuracy"] > bound, f"test accuracy {result['accuracy']:.3f} <= {bound}"
    losses = result["losses"]
    assert losses[-1] < 0.5 * losses[0], losses
    # forward+backward, and the update: the rest of training reuses them.
    assert result["compiles"] <= 2, result["compiles"]


def test_digits_mlp_learns_the_sklearn_digits():
    pytest.importorskip("sklearn")
    _check(digits_mlp.train(load_digits_data(), **SETTINGS), 0.93)


def test_digits_mlp_learns_separable_synthetic_data():
    # Runs without scikit-learn: the same model and shapes on Gaussian clusters.
    _check(digits_mlp.train(synthetic_digits_like(), **SETTINGS), 0.95)


def test_training_is_reproducible_with_manual_seed():
    data = synthetic_digits_like(n=300)
    first = digits_mlp.train(data, **dict(SETTINGS, epochs=1))
    second = digits_mlp.train(data, **dict(SETTINGS, epochs=1))
    assert first["losses"] == second["losses"]  # same init, same batches, same dropout masks
    assert llgrad.runtime.stats()["compiles"] >= 1


def test_digits_mlp_learns_with_the_whole_step_compiled():
    # examples/digits_mlp.py --compile: zero_grad, forward, backward and Adam traced once
    _check(digits_mlp.train(synthetic_digits_like(), **SETTINGS, compiled=True), 0.95)

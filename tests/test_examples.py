"""The examples run (`-m slow`; the digits MLP example trains in the default suite, test_train_digits)."""

from __future__ import annotations

import contextlib
import io
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))


@pytest.mark.slow  # two dozen small programs; the seed-notebook tests cover the same cells
def test_tutorial_walkthrough_prints_the_tutorial_results():
    import tutorial

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tutorial.main()
    text = out.getvalue()
    assert "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])" in text
    assert "<SubBackward0 object at" in text
    assert "tensor([1., 1., 1., 1.])" in text
    assert "training accuracy 100%" in text


@pytest.mark.slow
def test_digits_cnn_learns():
    import digits_cnn
    import digits_mlp
    from common import load_digits_data, synthetic_digits_like

    try:
        data = load_digits_data()
    except SystemExit:  # scikit-learn is not installed
        data = synthetic_digits_like()
    result = digits_mlp.train(data, epochs=4, lr=3e-3, drop_last=True, log=lambda line: None,
                              build=digits_cnn.build)
    assert result["accuracy"] > 0.93

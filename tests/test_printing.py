"""repr/str match PyTorch's formatting: fixed, integer-valued and scientific notation,
int and bool tensors, 0-d, empty and large (summarized) tensors, dtype, requires_grad and
grad_fn suffixes, line wrapping. Reference texts were recorded from PyTorch 2.13
(golden/printing_torch.json; regenerate with `python tests/test_printing.py --record`)."""

import json
import pathlib

import llgrad
import numpy as np
import pytest

GOLDEN = pathlib.Path(__file__).parent / "golden" / "printing_torch.json"

CASES = {
    "ones": "L.ones(2, 2)",
    "fractions": "L.tensor([[1.5, 2.25], [3.125, -4.0]])",
    "sci_small": "L.tensor([1e-5, 1.0])",
    "sci_large": "L.tensor([1e10, 1.0])",
    "sci_ratio": "L.tensor([100000.0, 1.0])",
    "int_valued_big": "L.tensor([123456789.0, 1.0])",
    "specials": "L.tensor([1.5, float('nan'), float('inf'), -float('inf')])",
    "all_nan": "L.tensor([float('nan'), float('nan')])",
    "zeros": "L.zeros(3)",
    "negatives": "L.tensor([[-1.0, 2.5], [3.0, -0.001]])",
    "ints": "L.tensor([[1, -20], [300, 4]])",
    "int32": "L.tensor([1, 2], dtype=L.int32)",
    "bools": "L.tensor([True, False, True])",
    "scalar": "L.tensor(3.25)",
    "scalar_int": "L.tensor(7)",
    "scalar_bool": "L.tensor(False)",
    "scalar_f64": "L.tensor(2.5, dtype=L.float64)",
    "empty": "L.tensor([])",
    "empty_2d": "L.zeros(0, 3)",
    "empty_int": "L.zeros(0, dtype=L.int64)",
    "float64": "L.tensor([[1.0, 2.0]], dtype=L.float64)",
    "arange_long": "L.arange(2000.0)",
    "arange_int": "L.arange(1500)",
    "big_2d": "L.arange(40000.0).reshape(200, 200) / 7",
    "big_3d": "L.arange(3000).reshape(10, 10, 30)",
    "wrap": "L.arange(40.0) / 3",
    "wrap_int": "L.arange(100) * 1234567",
    "requires_grad": "L.tensor([1.0, 2.0], requires_grad=True)",
    "grad_fn": "L.tensor([1.0, 2.0], requires_grad=True) * 2",
    "grad_fn_long_line": "(L.arange(20.0, requires_grad=True) / 3).exp()",
    "f64_grad": "L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True).sum()",
    "tiny_values": "L.tensor([0.0001, 0.0002])",
    "mixed_magnitudes": "L.tensor([[0.1, 20.0], [3000.0, 4.0]])",
    "3d": "L.arange(24.0).reshape(2, 3, 4)",
    "4d": "L.arange(16).reshape(2, 2, 2, 2)",
    "neg_zero": "L.tensor([-0.0, 0.0])",
}


def _repr(L, expr):
    return repr(eval(expr, {"L": L}))


@pytest.mark.parametrize("name", sorted(CASES))
def test_repr_matches_recorded_pytorch(name):
    golden = json.loads(GOLDEN.read_text())
    assert _repr(llgrad, CASES[name]) == golden[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_repr_matches_live_pytorch(name):
    torch = pytest.importorskip("torch")
    assert _repr(llgrad, CASES[name]) == _repr(torch, CASES[name])


def test_str_equals_repr_and_print_options():
    x = llgrad.tensor([1.23456789, 2.0])
    assert str(x) == repr(x)
    llgrad.set_printoptions(precision=2)
    try:
        assert repr(x) == "tensor([1.23, 2.00])"
    finally:
        llgrad.set_printoptions(profile="default")
    assert repr(x) == "tensor([1.2346, 2.0000])"
    assert np.isfinite(x.numpy()).all()


if __name__ == "__main__":
    import sys

    if "--record" in sys.argv:
        import torch

        GOLDEN.write_text(json.dumps({k: _repr(torch, v) for k, v in CASES.items()}, indent=1))
        print(f"recorded {GOLDEN}")

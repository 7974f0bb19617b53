"""Every cell of the five seed notebooks gives PyTorch's output with `import torch`
mapped to llgrad: printed values, reprs, grad_fn names, warnings and exceptions.

The reference transcript was recorded from PyTorch 2.13 (golden/seeds_torch.json,
regenerate with `python tests/notebook.py --record`); when torch is installed
the comparison also runs against it live.
"""

import json
import pathlib

import llgrad
import llgrad.autograd
import numpy as np
import pytest
from notebook import module_for, run_cells
from seed_cells import NOTEBOOKS

GOLDEN = json.loads((pathlib.Path(__file__).parent / "golden" / "seeds_torch.json").read_text())


def _llgrad_transcript(name):
    return run_cells(NOTEBOOKS[name], module_for(llgrad, np.random.default_rng(1234)), llgrad.autograd)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_seed_matches_recorded_pytorch(name):
    got = _llgrad_transcript(name)
    for i, (cell, g, want) in enumerate(zip(NOTEBOOKS[name], got, GOLDEN[name])):
        assert g == want, f"cell {i}:\n{cell}\n--- llgrad:\n{g}--- pytorch:\n{want}"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_seed_matches_live_pytorch(name):
    torch = pytest.importorskip("torch")
    want = run_cells(NOTEBOOKS[name], module_for(torch, np.random.default_rng(1234)), torch.autograd)
    assert _llgrad_transcript(name) == want


def test_tutorial_values_and_graph():
    x = llgrad.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    assert y.grad_fn.name() == "AddBackward0"
    assert y.grad_fn.next_functions[0][0].variable is x
    assert z.grad_fn.name() == "MulBackward0" and out.grad_fn.name() == "MeanBackward0"
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 4.5, np.float32))
    assert x.grad.dtype is llgrad.float32 and x.grad.grad_fn is None
    assert out.item() == 27.0

"""Minimal regression tests for the bugs differential fuzzing found (tests/test_fuzz.py).

Each is the shrunk graph the fuzzer reported, reduced by hand to the lines that matter,
with the value PyTorch gives.
"""

import llgrad
import numpy as np


def test_reading_a_computed_advanced_index_again():
    # The scheduler looked at the source of an `index` node that had already been computed
    # (and had dropped its sources): IndexError at compile time.
    x = llgrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = x[llgrad.tensor([1, 0])]
    assert y.tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert (y * 2).sum().item() == 20.0

"""Differential fuzzing: random op graphs through llgrad, a float64 NumPy reference, finite
differences and PyTorch (tests/fuzz/ has the generator and the oracles).

The default run is bounded and deterministic (derandomized, no example database):
about 280 graphs over the eight profiles (elementwise, views, reductions, matmul, indexing,
mixed dtypes, in-place, large shapes), some 40 s. Longer runs:

    LLGRAD_FUZZ_EXAMPLES=2000 python -m pytest -q tests/test_fuzz.py   # examples per profile
    LLGRAD_FUZZ_SEED=7 ...                                              # other graphs than the default
A failure prints the shrunk graph as a program; it goes into test_fuzz_regressions.py.
Known differences from PyTorch the generator avoids or the checker tolerates are marked
"known difference" in tests/fuzz/.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from fuzz import check as fuzz_check
from fuzz.check import Mismatch, check
from fuzz.graph import Graph, Leaf, Ref, Step
from fuzz.strategies import PROFILES, graphs
from hypothesis import HealthCheck, given, note, seed, settings
from llgrad.compiler.ops import OPS as LLGRAD_OPS

# Examples per profile in the default suite: compiles dominate (each new graph is a new program).
DEFAULT_EXAMPLES = {
    "elementwise": 50,
    "views": 40,
    "reductions": 40,
    "matmul": 20,
    "indexing": 40,
    "mixed": 50,
    "inplace": 40,
    "large": 3,  # past the GEMM, split-reduction and two-thread thresholds
}


def _settings(profile: str):
    count = int(os.environ.get("LLGRAD_FUZZ_EXAMPLES", 0)) or DEFAULT_EXAMPLES[profile]
    chosen = os.environ.get("LLGRAD_FUZZ_SEED")
    config = settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=chosen is None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    return (lambda f: seed(int(chosen))(config(f))) if chosen else config


@pytest.mark.parametrize("profile", list(PROFILES))
def test_fuzz(profile: str) -> None:
    @_settings(profile)
    @given(graphs(profile))
    def run(graph: Graph) -> None:
        note(graph.source())
        check(graph)

    run()


# -- the oracles can fail ---------------------------------------------------------------------


def _chain(dtype: str, op: str) -> Graph:
    x = np.array([[0.3, -1.2, 0.7], [1.1, 0.4, -0.6]], dtype=dtype)
    return Graph([Leaf(x, grad=True), Step(op, (Ref(0),)), Step("mul", (Ref(1), 3))], outputs=[2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_checker_catches_a_wrong_value(monkeypatch, dtype: str) -> None:
    check(_chain(dtype, "tanh"))
    right = fuzz_check.OPS["tanh"].ref

    def off_by_1e5(ctx, args, attrs):  # stands for llgrad being off by 1e-5 relative
        out = right(ctx, args, attrs)
        out.value = out.value * (1 + 1e-5)
        return out

    monkeypatch.setattr(fuzz_check.OPS["tanh"], "ref", off_by_1e5)
    with pytest.raises(Mismatch, match="value of v2"):
        check(_chain(dtype, "tanh"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_checker_catches_a_wrong_gradient(monkeypatch, dtype: str) -> None:
    sin = LLGRAD_OPS["sin"]
    right = sin.vjp
    monkeypatch.setattr(sin, "vjp", lambda e, g, c: (e.mul(right(e, g, c)[0], 1.001),))
    with pytest.raises(Mismatch, match="gradient"):
        check(_chain(dtype, "sin"))

"""Every program the test suite runs is dumped as MLIR, and mlir-opt-19 verifies all of it.

Importing this module (pytest collects every module before it runs any test) starts
recording the tensor-level stages (forward, backward, optimized) and the loop-level
stage (kernels) of each new program the session runs; the test below runs last
(this file sorts last) and feeds them all to mlir-opt-19 in one call. Run alone,
it checks the graphs of test_mlir_valid.py. Skipped when mlir-opt-19 is absent;
CI installs it (.ci/run).
"""

from __future__ import annotations

import re
import threading

import pytest
from llgrad.runtime import dump
from test_mlir_valid import GRAPHS, MLIR_OPT, verify

STAGES = ("forward", "backward", "optimized", "kernels")
_seen: set = set()
_modules: list = []
_failures: list = []
_bodies: set = set()
_HASH = re.compile(r"llgrad_[0-9a-f]{16}")
_lock = threading.Lock()


def _record(prog, outputs, inputs, params, required) -> None:
    with _lock:
        if prog.name in _seen:
            return
        _seen.add(prog.name)
    try:
        texts = [dump.render(s, prog, outputs, inputs, params, required=required) for s in STAGES]
    except Exception as e:  # reported by the test below, never raised into another test
        with _lock:
            _failures.append(f"{prog.name}: {type(e).__name__}: {e}")
        return
    with _lock:
        for text in texts:
            if "(this program has no" in text:
                continue
            # Programs that differ only in their name or header print the same module: verify it once.
            body = _HASH.sub("llgrad_", "\n".join(ln for ln in text.splitlines() if not ln.startswith("// ")))
            if body not in _bodies:
                _bodies.add(body)
                _modules.append(text)


if MLIR_OPT is not None:
    dump.observe(_record)


@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-19 is not installed (mlir-19-tools)")
def test_every_program_of_the_suite_is_valid_mlir():
    for graph in GRAPHS:  # at least these, when this file runs alone
        graph()
    dump.unobserve(_record)
    assert _failures == []
    assert len(_seen) >= len(GRAPHS)
    errors = verify(_modules)
    print(f"\nmlir-opt-19 verified {len(_modules)} distinct modules of {len(_seen)} programs")
    assert errors == [], "\n\n".join(errors[:5])

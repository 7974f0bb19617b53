"""Golden text: the dumps of the autograd tutorial's example, pinned line for line.

The script runs as "tutorial.py", so source locations and comments are stable.
Only the program's signature hash and its compile time are normalized. After an
intended change of the printers, regenerate with LLGRAD_UPDATE_GOLDEN=1 and read
the diff.
"""

from __future__ import annotations

import linecache
import os
import pathlib
import re

import llgrad
import pytest
from test_mlir_valid import MLIR_OPT, verify

GOLDEN = pathlib.Path(__file__).parent / "golden"
STAGES = ("forward", "backward", "optimized", "kernels")

TUTORIAL = """\
import llgrad as torch

x = torch.ones(2, 2, requires_grad=True)
y = x + 2
z = y * y * 3
out = z.mean()
out.backward()
"""


def run_tutorial() -> dict:
    linecache.cache["tutorial.py"] = (len(TUTORIAL), None, TUTORIAL.splitlines(True), "tutorial.py")
    scope: dict = {}
    code = compile(TUTORIAL, "tutorial.py", "exec")
    text = llgrad.debug.dump(lambda: exec(code, scope), stage=",".join(STAGES))
    assert scope["x"].grad.tolist() == [[4.5, 4.5], [4.5, 4.5]]
    modules = re.split(r"\n(?=// llgrad program )", text.strip())
    assert len(modules) == len(STAGES), "the tutorial is one program"
    return {stage: normalize(m) + "\n" for stage, m in zip(STAGES, modules)}


def normalize(text: str) -> str:
    text = re.sub(r"llgrad_[0-9a-f]{16}", "llgrad_" + "0" * 16, text)
    text = re.sub(r"program [0-9a-f]{16}", "program " + "0" * 16, text)
    return re.sub(r"(compiled|loaded from the disk cache) in [0-9.]+ ms", "compiled in <t> ms", text)


@pytest.fixture(scope="module")
def dumps() -> dict:
    got = run_tutorial()
    if os.environ.get("LLGRAD_UPDATE_GOLDEN"):
        for stage, text in got.items():
            (GOLDEN / f"tutorial.{stage}.mlir").write_text(text)
    return got


@pytest.mark.parametrize("stage", STAGES)
def test_tutorial_dump_matches_golden(dumps, stage):
    expected = (GOLDEN / f"tutorial.{stage}.mlir").read_text()
    assert dumps[stage] == expected


def test_golden_shows_what_a_reader_needs(dumps):
    forward, backward, kernels = dumps["forward"], dumps["backward"], dumps["kernels"]
    assert '// tutorial.py:4  y = x + 2' in forward and 'loc("tutorial.py":4:5)' in forward
    assert "llgrad.backward" in backward and "llgrad.backward" not in forward
    assert "// tutorial.py:7  out.backward()" in backward
    assert "@fused_add_mul_sum_div_2x2" in kernels and kernels.count("scf.for") == 2


@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-19 is not installed")
def test_golden_files_are_valid_mlir():
    assert verify([(GOLDEN / f"tutorial.{s}.mlir").read_text() for s in STAGES]) == []

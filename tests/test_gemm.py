"""The generated GEMM (compiler/gemm.py): every packing path against NumPy, and its code read back."""

import llgrad
import numpy as np
import pytest
from llgrad.compiler import gemm, gemm_llvm
from llgrad.compiler.gemm import MicroKernel, Pack
from llgrad.runtime import gemm_library
from llgrad.runtime.jit import jit

SHAPES = [(37, 300, 45), (8, 8, 32), (130, 784, 70), (64, 513, 96), (9, 17, 1025), (100, 64, 10),
          (33, 40, 16)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_every_operand_layout_matches_numpy(m, k, n, dtype):
    # row-major A packs by 8x8 transposes, A read transposed by whole vectors; the same for B the
    # other way round; sizes that are not multiples of the tiles take the edge path
    rng = np.random.default_rng(m * k + n)
    for a_transposed in (False, True):
        for b_transposed in (False, True):
            a = rng.standard_normal((k, m) if a_transposed else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if b_transposed else (k, n)).astype(dtype)
            left, right = llgrad.tensor(a), llgrad.tensor(b)
            got = ((left.t() if a_transposed else left) @ (right.t() if b_transposed else right)).numpy()
            want = (a.T if a_transposed else a).astype(np.float64) @ (b.T if b_transposed else b)
            tol = 1e-5 if dtype is np.float32 else 1e-12
            np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())


def test_a_product_one_vector_wide_pads_to_one_vector():
    x, w = llgrad.rand(128, 512), llgrad.rand(512, 10)
    got = (x @ w).numpy()
    (micro,) = _micro_kernels()
    assert micro.nr == 16  # 10 columns in one 16-lane vector, not two
    np.testing.assert_allclose(got, x.numpy().astype(np.float64) @ w.numpy(), rtol=1e-5)


def _micro_kernels() -> list:
    body = llgrad.debug.last_program().kernels[0].body
    return [s for s in _statements(body) if isinstance(s, gemm.MicroKernel)]


def test_depth_is_cut_into_equal_slices():
    x, w = llgrad.rand(128, 784), llgrad.rand(784, 512)
    (x @ w).numpy()
    (micro,) = _micro_kernels()
    assert micro.kc == 200  # 4 x 200 >= 784, not 4 x 256 with a slice of 16 padded to 256


def test_library_code_is_fma_vectors_and_register_transposes():
    library = str(gemm_llvm.library_module())
    assert "llvm.fma.v16f32" in library and "llvm.fma.v8f64" in library  # 512-bit register tiles
    assert "shufflevector <8 x float>" in library  # the 8x8 transposes of the packing
    if "+fma" in jit().features.split(","):
        asm = jit().emit_assembly(jit().optimize(library))
        for name in ("llgrad_gemm_micro_f32", "llgrad_gemm_micro1_f32"):
            start = asm.index(name + ":")
            micro = asm[start:asm.index(".Lfunc_end", start)]
            assert "vfmadd" in micro and "call" not in micro  # native FMA, no libm fallback
    assert not jit().undefined(gemm_library.object_code(), gemm_library.entry_points())


def _statements(body):
    for s in body:
        yield s
        yield from _statements(getattr(s, "body", []))


def test_the_kernels_dump_shows_the_tiles_and_strips_that_ran():
    # The dump is printed from the statements the code runs: a 10-column product packs B in
    # strips of one vector (16 float32), not two (the printer once said 32 next to 8x16 tiles).
    a, b = np.random.default_rng(0).standard_normal((2, 256, 64)).astype(np.float32)[0], \
        np.random.default_rng(1).standard_normal((64, 10)).astype(np.float32)
    out = llgrad.tensor(a) @ llgrad.tensor(b)
    text = llgrad.debug.dump(out, stage="kernels")
    prog = llgrad.debug.program(out)
    statements = [s for k in prog.kernels for s in _statements(k.body)]
    packs = {s.which: s.strip for s in statements if isinstance(s, Pack)}
    tiles = {s.nr for s in statements if isinstance(s, MicroKernel)}
    assert packs["b"] == 16 and tiles == {16}
    assert f"pack B block: strips of {packs['b']}" in text and f"pack A block: strips of {packs['a']}" in text
    assert f"({gemm.MR}x{tiles.pop()} register tiles)" in text

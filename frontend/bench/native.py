"""A hand-written native kernel of the chain workload: the practical floor llgrad is measured
against. Built with gcc at benchmark time into a temporary directory and called through ctypes
on both cores; skipped cleanly when gcc (or its vector math library) is missing."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Forward and backward of the chain fused by hand. gcc vectorizes expf/tanhf into glibc's libmvec
# (_ZGVeN16v_expf, ...) under -ffast-math with OpenMP SIMD declarations.
CHAIN_C = r"""
#include <math.h>
float chain_step(const float *restrict x, float *restrict gx, long n) {
    float total = 0.0f;
    #pragma omp simd reduction(+:total)
    for (long i = 0; i < n; i++) {
        float xi = x[i];
        float a = expf(xi * 0.5f + 0.1f);
        float u = a * xi;
        float b = tanhf(u);
        float v = b * 2.0f - xi;
        float c = 1.0f / (1.0f + expf(-v));
        total += c * b + xi * 0.1f;
        float gv = b * c * (1.0f - c);             /* d out/d v through c = sigmoid(v) */
        float gu = (c + 2.0f * gv) * (1.0f - b * b); /* d out/d u through b = tanh(u) */
        gx[i] = 0.1f - gv + gu * a + gu * xi * a * 0.5f;
    }
    return total;
}
"""

BASE_FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp-simd",
              "-fPIC", "-shared"]


class NativeChain:
    """The compiled chain kernel, split over two threads (ctypes releases the GIL)."""

    def __init__(self, library: ctypes.CDLL, flags: str) -> None:
        self.fn = library.chain_step
        self.fn.restype = ctypes.c_float
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        self.flags = flags
        self.pool = ThreadPoolExecutor(2)
        self._library = library  # keep the shared object loaded

    def __call__(self, x_addr: int, gx_addr: int, n: int) -> float:
        half = (n // 2) & ~15  # a whole number of 64-byte vectors in the first half
        jobs = [self.pool.submit(self.fn, x_addr, gx_addr, half),
                self.pool.submit(self.fn, x_addr + 4 * half, gx_addr + 4 * half, n - half)]
        return sum(job.result() for job in jobs)


def build_chain() -> NativeChain | str:
    """The kernel, or the reason it could not be built."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return "gcc not found"
    workdir = tempfile.mkdtemp(prefix="llgrad-bench-")
    try:
        source = os.path.join(workdir, "chain.c")
        with open(source, "w") as f:
            f.write(CHAIN_C)
        # With libmvec the math is vectorized; without it gcc calls scalar expf/tanhf (slower).
        failure = ""
        for libs in (["-lmvec", "-lm"], ["-lm"]):
            target = os.path.join(workdir, f"chain{len(libs)}.so")
            cmd = [gcc, *BASE_FLAGS, source, "-o", target, *libs]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if done.returncode == 0:
                return NativeChain(ctypes.CDLL(target), " ".join(BASE_FLAGS[:-2] + libs))
            failure = done.stderr.strip().splitlines()[-1:] or ["gcc failed"]
        return f"gcc failed: {failure[0]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"native build failed: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the loaded library stays mapped


def address(array: np.ndarray) -> int:
    return array.ctypes.data

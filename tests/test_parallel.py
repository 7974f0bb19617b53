"""Programs split across cores compute exactly what one thread computes."""

import os
import subprocess
import sys
import textwrap

import llgrad
import numpy as np

SCRIPT = textwrap.dedent("""
    import numpy as np, llgrad
    rng = np.random.default_rng(0)
    x = llgrad.tensor(rng.standard_normal((512, 384)).astype(np.float32), requires_grad=True)
    w = llgrad.tensor(rng.standard_normal((384, 256)).astype(np.float32), requires_grad=True)
    h = (x @ w).tanh()
    loss = (h.log_softmax(1) * h).sum(1).mean() + (x * x.sigmoid()).sum() * 1e-3
    loss.backward()
    prog = llgrad.debug.last_program()
    np.save("{out}", np.concatenate([x.grad.numpy().ravel(), w.grad.numpy().ravel(), [loss.item()]]))
    print(prog.plan.work, prog._fn_mt is not None)
""")


def _run(tmp_path, threads: int) -> np.ndarray:
    out = tmp_path / f"t{threads}.npy"
    env = dict(os.environ, LLGRAD_NUM_THREADS=str(threads), LLGRAD_CACHE="0")
    res = subprocess.run([sys.executable, "-c", SCRIPT.format(out=out)], env=env, capture_output=True,
                         text=True, check=True)
    work, threaded = res.stdout.split()
    assert threaded == "True" and int(work) > 0
    return np.load(out)


def test_two_threads_match_one_thread(tmp_path):
    one, two = _run(tmp_path, 1), _run(tmp_path, 2)
    np.testing.assert_array_equal(one, two)


def test_small_programs_stay_on_the_calling_thread():
    (llgrad.ones(3) * 2).sum().item()
    prog = llgrad.debug.last_program()
    assert prog._fn_mt is None  # below the measured threshold: no hand-off to a worker


def test_large_full_reduction_is_split_and_fuses_its_same_size_outputs():
    x = llgrad.rand(1 << 18, requires_grad=True)
    loss = ((x * 2 + 1).tanh() * x).sum()
    loss.backward()
    kernels = llgrad.debug.last_program().kernels
    # partial sums in an outer loop the threads share (with the gradient stored in the same pass),
    # then the sum of the partials
    assert len(kernels) == 2, [k.name for k in kernels]
    xn = x.detach().numpy().astype(np.float64)
    t = np.tanh(xn * 2 + 1)
    np.testing.assert_allclose(loss.item(), (t * xn).sum(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), t + xn * 2 * (1 - t * t), rtol=1e-5, atol=1e-6)


def test_reduction_over_leading_dims_runs_in_memory_order_and_is_exact():
    rng = np.random.default_rng(3)
    g = llgrad.tensor(rng.standard_normal((300, 96)).astype(np.float32))
    x = llgrad.tensor(rng.standard_normal((300, 96)).astype(np.float32))
    s = (g * x).sum(0)
    m = g.amax(0)
    want = (g.numpy().astype(np.float64) * x.numpy()).sum(0)
    np.testing.assert_allclose(s.numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(m.numpy(), g.numpy().max(0))
    kernel = llgrad.debug.last_program().kernels[0]
    assert kernel.scratch, "the accumulator row lives in per-thread scratch"


def test_transposed_products_are_written_in_place_not_copied():
    a, b = llgrad.rand(16, 8), llgrad.rand(8, 12)
    # .contiguous() drops the view's hold on the product, so only the transpose is wanted
    prog = llgrad.debug.program((a @ b).t().contiguous())
    assert [k.name for k in prog.kernels] == ["matmul_12x16_k8"]  # b.T @ a.T, no copy
    np.testing.assert_allclose((a @ b).t().numpy(), (a.numpy() @ b.numpy()).T, rtol=1e-5)


def test_a_matmul_alone_is_shared_between_cores():
    # The generated GEMM's work counts its multiply-adds, not its few tile-loop iterations.
    a, b = llgrad.rand(256, 256), llgrad.rand(256, 256)
    c = (a @ b).numpy()
    prog = llgrad.debug.last_program()
    assert prog.plan.work >= 256 ** 3 and prog._fn_mt is not None
    # 256 columns make two tiles of 128, one per core, not one tile of 256
    (parallel_loop,) = prog.kernels[0].body
    assert parallel_loop.role == "parallel" and parallel_loop.var.extent == 2
    np.testing.assert_allclose(c, a.numpy().astype(np.float64) @ b.numpy(), rtol=1e-5)

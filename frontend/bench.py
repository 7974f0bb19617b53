"""Compiled-kernel benchmarks: llgrad against NumPy and PyTorch eager, in one process.

    python -m llgrad.bench [--quick] [--only tiny,chain] [--json out.json]

Each workload checks llgrad's result against the reference first, then times
all sides interleaved (warm-up first) and reports medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import llgrad
import numpy as np


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _torch():
    try:
        import torch

        return torch
    except ImportError:
        return None


# -- workloads: each returns {side name: zero-argument step function} and a check ------------

def tiny(quick: bool):
    """The tutorial graph on 2x2: per-step latency of a cached forward+backward."""
    x = llgrad.ones(2, 2, requires_grad=True)

    def llgrad_step():
        x.grad = None
        out = ((x + 2) * (x + 2) * 3).mean()
        out.backward()
        return x.grad

    xn = np.ones((2, 2), np.float32)

    def numpy_step():
        y = xn + 2
        return (6 * y / y.size).astype(np.float32)

    sides = {"llgrad": llgrad_step, "numpy": numpy_step}
    torch = _torch()
    if torch is not None:
        xt = torch.ones(2, 2, requires_grad=True)

        def torch_step():
            xt.grad = None
            out = ((xt + 2) * (xt + 2) * 3).mean()
            out.backward()
            return xt.grad

        sides["torch"] = torch_step
    check = lambda: np.testing.assert_allclose(llgrad_step().numpy(), numpy_step(), rtol=1e-6)  # noqa: E731
    return sides, check, 0


def _chain_forward(lib_exp, lib_tanh, lib_sigmoid, x):
    a = lib_exp(x * 0.5 + 0.1)
    b = lib_tanh(a * x)
    c = lib_sigmoid(b * 2.0 - x)
    return c * b + x * 0.1


def chain(quick: bool):
    """10 elementwise ops with exp, tanh, sigmoid on 4M float32, .sum(), forward+backward."""
    n = 1 << 18 if quick else 1 << 22
    data = np.random.default_rng(0).uniform(-1, 1, n).astype(np.float32)
    x = llgrad.tensor(data, requires_grad=True)

    def llgrad_step():
        x.grad = None
        out = _chain_forward(llgrad.exp, llgrad.tanh, llgrad.sigmoid, x).sum()
        out.backward()
        return x.grad

    def numpy_step():
        xn = data
        a = np.exp(xn * np.float32(0.5) + np.float32(0.1))
        u = a * xn
        b = np.tanh(u)
        v = b * np.float32(2.0) - xn
        c = 1 / (1 + np.exp(-v))
        # out = sum(c*b + 0.1x); backward by hand
        gc, gb = b, c
        gv = gc * c * (1 - c)
        gb = gb + gv * 2
        gx = np.float32(0.1) - gv
        gu = gb * (1 - b * b)
        ga = gu * xn
        gx = gx + gu * a + ga * a * np.float32(0.5)
        return gx

    sides = {"llgrad": llgrad_step, "numpy": numpy_step}
    torch = _torch()
    if torch is not None:
        xt = torch.tensor(data, requires_grad=True)

        def torch_step():
            xt.grad = None
            out = _chain_forward(torch.exp, torch.tanh, torch.sigmoid, xt).sum()
            out.backward()
            return xt.grad

        sides["torch"] = torch_step

    def check():
        np.testing.assert_allclose(llgrad_step().numpy(), numpy_step(), rtol=2e-4, atol=2e-5)

    return sides, check, n * 4 * 2  # bytes: read x, write grad


WORKLOADS = {"tiny": tiny, "chain": chain}


def run(names: list[str], quick: bool) -> list[dict]:
    results = []
    for name in names:
        sides, check, nbytes = WORKLOADS[name](quick)
        start = time.perf_counter()
        sides["llgrad"]()
        first_call = time.perf_counter() - start
        check()
        reps = (20 if quick else 200) if name != "tiny" else (200 if quick else 5000)
        warmup = max(3, reps // 10)
        times = {k: [] for k in sides}
        for i in range(warmup + reps):
            for side, fn in sides.items():  # interleaved, so load changes hit all sides alike
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if i >= warmup:
                    times[side].append(dt)
        row = {"workload": name, "first_call_s": first_call, "bytes": nbytes, "sides": {}}
        for side, ts in times.items():
            row["sides"][side] = {"median_ms": statistics.median(ts) * 1e3, "min_ms": min(ts) * 1e3,
                                  "max_ms": max(ts) * 1e3, "reps": len(ts)}
        results.append(row)
    return results


def format_table(results: list[dict]) -> str:
    lines = [f"machine: {cpu_model()}, {__import__('os').cpu_count()} cores; "
             f"llgrad {llgrad.__version__}, numpy {np.__version__}"
             + (f", torch {_torch().__version__}" if _torch() else "")]
    lines.append(f"{'workload':10s} {'side':8s} {'median ms':>10s} {'min-max ms':>20s} {'vs ref':>8s} "
                 f"{'first call s':>12s}")
    for row in results:
        sides = row["sides"]
        ref = "torch" if "torch" in sides else "numpy"
        for side, s in sides.items():
            ratio = sides[ref]["median_ms"] / s["median_ms"]
            first = f"{row['first_call_s']:.3f}" if side == "llgrad" else ""
            lines.append(f"{row['workload']:10s} {side:8s} {s['median_ms']:10.4f} "
                         f"{s['min_ms']:9.4f}-{s['max_ms']:<10.4f} {ratio:7.2f}x {first:>12s}")
    lines.append("(vs ref: how many times faster than the reference side, torch eager if installed "
                 "else numpy)")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="llgrad-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short version (for tests)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument("--json", help="write raw numbers to this file")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in WORKLOADS:
            parser.error(f"unknown workload {n!r}; choose from {', '.join(WORKLOADS)}")
    results = run(names, args.quick)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": cpu_model(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()

"""The main job in one command: trace the tutorial example, show its IR, compile, time it.

    python -m llgrad.demo
"""

from __future__ import annotations

import statistics
import time

import llgrad as torch


def tutorial_step(x):
    y = x + 2
    z = y * y * 3
    out = z.mean()
    out.backward()
    return out


def main() -> None:
    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    print("# The tutorial: x = ones(2, 2); y = x + 2; z = y * y * 3; out = z.mean()\n")
    print("## Forward IR (recorded, nothing computed yet)")
    print(torch.debug.graph_text(out, name="forward"))
    (grad,) = torch.debug.trace_grad(out, x)
    print("\n## Backward IR (derived from the forward IR by each op's VJP rule)")
    print(torch.debug.graph_text(grad, name="backward"))

    out.backward()
    prog = torch.debug.last_program()
    print(f"\n## Fused kernels of the compiled step ({len(prog.kernels)} kernel, "
          f"compiled in {prog.compile_seconds * 1e3:.1f} ms)")
    print(prog.kernel_text())
    print("\n## Result")
    print("out    =", out)
    print("x.grad =", x.grad)
    print("y.grad_fn =", y.grad_fn)

    times = []
    for _ in range(2000):
        x.grad = None
        start = time.perf_counter()
        tutorial_step(x)
        times.append(time.perf_counter() - start)
    print(f"\n## Cached step (forward + backward, cache hit): median {statistics.median(times) * 1e6:.1f} us "
          f"over {len(times)} steps")
    print("runtime stats:", torch.runtime.stats())


if __name__ == "__main__":
    main()

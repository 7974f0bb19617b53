"""What the numbers were measured on: CPU, cores, library versions, and the memory bandwidth
of this run (a large copy), which sets the floor for memory-bound workloads."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _llvm_cpu() -> tuple[str, str]:
    """LLVM's name for the host CPU and the SIMD features llgrad's code can use."""
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
        simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "amx-tile") if features.get(f)]
        return llvm.get_host_cpu_name(), " ".join(simd)
    except Exception:  # llvmlite is a dependency, but a broken one must not hide the table
        return "unknown", ""


def machine_info() -> dict:
    llvm_name, simd = _llvm_cpu()
    return {
        "cpu": cpu_model(),
        "llvm_cpu": llvm_name,
        "simd": simd,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def _version(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    return getattr(module, "__version__", None) if module else None


def gcc_version() -> str | None:
    gcc = shutil.which("gcc")
    if not gcc:
        return None
    try:
        out = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    """Versions of everything that took part (peers only when they were imported)."""
    import llgrad
    import llvmlite
    import llvmlite.binding as llvm

    found = {
        "python": platform.python_version(),
        "llgrad": llgrad.__version__,
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(map(str, llvm.llvm_version_info)),
        "numpy": np.__version__,
        "torch": _version("torch"),
        "jax": _version("jax"),
        "gcc": gcc_version(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        found["torch_threads"] = torch.get_num_threads()
    return {k: v for k, v in found.items() if v is not None}


def copy_bandwidth(mib: int, reps: int) -> dict:
    """GB/s of a large float32 copy, counted as STREAM does (bytes read + bytes written), on one
    thread and split over two threads (np.copyto releases the GIL). Buffers are touched first
    so page faults are not measured."""
    n = mib * 2**20 // 4
    src = np.ones(n, np.float32)
    dst = np.zeros(n, np.float32)
    half = n // 2
    with ThreadPoolExecutor(2) as pool:
        def two_threads() -> None:
            jobs = [pool.submit(np.copyto, dst[:half], src[:half]),
                    pool.submit(np.copyto, dst[half:], src[half:])]
            for job in jobs:
                job.result()

        one = _median_seconds(lambda: np.copyto(dst, src), reps)
        two = _median_seconds(two_threads, reps)
    moved = 2 * src.nbytes
    result = {"copy_mib": mib, "one_thread_gbs": moved / one / 1e9, "two_threads_gbs": moved / two / 1e9}
    result["floor_gbs"] = max(result["one_thread_gbs"], result["two_threads_gbs"])
    return result


def _median_seconds(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class LoadMeter:
    """How busy the machine was with other work while the suite ran: CPU time of the whole
    system (/proc/stat) minus this process's own, in cores. On a shared machine this says how
    much the numbers may be disturbed."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        steal = fields[7] if len(fields) > 7 else 0
        busy = sum(fields[:8]) - idle - steal
        own = os.times()
        return time.perf_counter(), busy / tick, steal / tick, own.user + own.system

    def result(self) -> dict:
        end = self._sample()
        if self.start is None or end is None:
            return {}
        elapsed = end[0] - self.start[0]
        others = (end[1] - self.start[1]) - (end[3] - self.start[3])
        return {"other_processes_cores": max(0.0, others / elapsed),
                "steal_cores": (end[2] - self.start[2]) / elapsed,
                "loadavg_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}

"""Presenting a run: the text table, the JSON file, and an optional bar chart."""

from __future__ import annotations

import json

COLUMNS = (("workload", 13, "<"), ("side", 14, "<"), ("median ms", 10, ">"), ("min - max ms", 19, ">"),
           ("reps", 5, ">"), ("speedup", 8, ">"), ("first call", 10, ">"), ("GB/s", 6, ">"),
           ("%bw", 5, ">"), ("GFLOP/s", 8, ">"), ("check", 12, "<"))


def _ms(value: float) -> str:
    """Four significant digits, without exponents: 0.05123, 6.981, 69.81, 17394."""
    if value >= 1000:
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 10:
        return f"{value:.2f}"
    if value >= 1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s" if value >= 0.1 else f"{value * 1e3:.1f} ms"


def _line(cells: list[str]) -> str:
    return " ".join(f"{c:{align}{width}}" for c, (_, width, align) in zip(cells, COLUMNS)).rstrip()


def _check_cell(side: dict) -> str:
    if side["check"] == "FAIL":
        return f"FAIL {side['max_rel_err']:.1e}"
    return side["check"]


def _side_cells(workload: str, name: str, side: dict) -> list[str]:
    timed = "median_ms" in side
    cells = [workload, name]
    if timed:
        cells += [_ms(side["median_ms"]), f"{_ms(side['min_ms'])} - {_ms(side['max_ms'])}", str(side["reps"]),
                  f"{side['speedup_vs_reference']:.2f}x"]
    else:
        cells += ["-", "", "", ""]
    cells.append(_seconds(side.get("first_call_s")))
    cells.append(f"{side['gbs']:.1f}" if "gbs" in side else "")
    cells.append(f"{side['bandwidth_fraction'] * 100:.0f}%" if "bandwidth_fraction" in side else "")
    cells.append(f"{side['gflops']:.1f}" if "gflops" in side else "")
    cells.append("reference" if name == "numpy" else _check_cell(side))
    return cells


def _header(run: dict) -> list[str]:
    m, v, bw = run["machine"], run["versions"], run["bandwidth"]
    versions = [f"python {v['python']}", f"llgrad {v['llgrad']}",
                f"llvmlite {v['llvmlite']} (LLVM {v['llvm']})", f"numpy {v['numpy']}"]
    if "torch" in v:
        versions.append(f"torch {v['torch']} ({v.get('torch_threads', '?')} threads)")
    versions += [f"{k} {v[k]}" for k in ("jax", "gcc") if k in v]
    peers = ", ".join(f"{name} {state}" for name, state in run["config"]["peers"].items())
    caches = run["config"].get("compile_caches", {})
    peers += "; compile caches: " + ", ".join(f"{who} {state}" for who, state in caches.items())
    mode = "quick" if run["config"]["quick"] else "full"
    return [
        f"llgrad benchmark suite ({mode} run, {run['seconds']:.0f} s): float32, median per step of "
        "interleaved repetitions after warm-up",
        f"machine: {m['cpu']} (LLVM cpu {m['llvm_cpu']}; {m['simd']}), {m['cores']} cores "
        f"({m['usable_cores']} usable), {m['system']}",
        "versions: " + ", ".join(versions),
        f"peers: {peers}",
        f"memory bandwidth ({bw['copy_mib']} MiB copy in this run, read+write counted): "
        f"1 thread {bw['one_thread_gbs']:.1f} GB/s, 2 threads {bw['two_threads_gbs']:.1f} GB/s; "
        f"floor = compulsory bytes / {bw['floor_gbs']:.1f} GB/s",
    ] + _load_line(run.get("load", {}))


def _load_line(load: dict) -> list[str]:
    if "other_processes_cores" not in load:
        return []
    return [f"load: other processes used {load['other_processes_cores']:.2f} cores on average during the run "
            f"(hypervisor steal {load['steal_cores']:.2f}); more than ~0.2 disturbs the numbers"]


def format_table(run: dict) -> str:
    """The human-readable table of a run (the dict `run_suite` returns)."""
    lines = _header(run) + [""]
    lines.append(_line([title for title, _, _ in COLUMNS]))
    for row in run["results"]:
        lines.append("")
        first = True
        for name, side in row["sides"].items():
            lines.append(_line(_side_cells(row["workload"] if first else "", name, side)))
            first = False
        if "floor_ms" in row:
            gbs = row["bytes_moved"] / row["floor_ms"] / 1e6
            lines.append(_line(["", "bandwidth floor", _ms(row["floor_ms"]), "", "", "", "", f"{gbs:.1f}",
                                "100%", "", ""]))
    lines += [""] + _legend(run) + _notes(run)
    return "\n".join(lines)


def _legend(run: dict) -> list[str]:
    refs = sorted({row["reference"] for row in run["results"]})
    ref_text = " / ".join("PyTorch eager" if r == "torch" else "NumPy" for r in refs)
    return [
        f"speedup: {ref_text} median / this side's median (>1 is faster). first call: the first step, "
        "with any JIT compile.",
        "GB/s: compulsory bytes (inputs read once, outputs written once) / median; %bw: of the copy "
        "bandwidth above. GFLOP/s: matmul flops / median.",
        "check: first-step results against the NumPy reference, max |diff| / max |reference| per output.",
    ]


def _notes(run: dict) -> list[str]:
    lines = ["", "workloads:"]
    for row in run["results"]:
        lines.append(f"  {row['workload']}: {row['summary']} (tolerance {row['tolerance']:g})")
        for name, note in row["notes"].items():
            lines.append(f"    {name}: {note}")
        for name, reason in row["skipped"].items():
            if not reason.startswith(("skipped (--skip)", "not installed")):
                lines.append(f"    {name}: not run: {reason}")
        for name, side in row["sides"].items():
            if side.get("error"):
                lines.append(f"    {name}: ERROR {side['error']}")
        built = row["sides"].get("llgrad", {}).get("llgrad_programs_while_timed")
        if built:
            lines.append(f"    llgrad: WARNING built {built} programs while timed (after warm-up): its graph "
                         "changes from step to step, so there is no steady state")
    return lines


def write_json(run: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(run, f, indent=1)


def plot(run: dict, path: str) -> str | None:
    """A bar chart of each workload's speedups (log scale); None, or why it was not drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        return "matplotlib is not installed (pip install 'llgrad[bench]')"
    rows = [r for r in run["results"] if any("median_ms" in s for s in r["sides"].values())]
    if not rows:
        return "no timed results to plot"
    cols = min(3, len(rows))
    nrows = -(-len(rows) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        names = [n for n, s in row["sides"].items() if "median_ms" in s]
        speedups = [row["sides"][n]["speedup_vs_reference"] for n in names]
        colors = ["tab:orange" if n == "llgrad" else "tab:blue" for n in names]
        ax.bar(names, speedups, color=colors)
        ax.axhline(1.0, color="gray", linewidth=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_title(row["workload"])
        ax.set_ylabel(f"speedup vs {row['reference']}")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        for i, value in enumerate(speedups):
            ax.annotate(f"{value:.2g}x", (i, value), ha="center", va="bottom", fontsize=8)
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    fig.suptitle(f"llgrad bench on {run['machine']['cpu']}, {run['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None

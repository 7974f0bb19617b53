"""Compiled-kernel benchmarks: llgrad against NumPy, PyTorch eager, torch.compile, jax.jit and a
hand-written C kernel, in one process.

    python -m llgrad.bench                      # the full suite (torch.compile compiles take minutes)
    llgrad-bench --quick --skip torch.compile   # a short run
    llgrad-bench --only chain,tiny --json out.json --plot out.png

Each workload first runs every side once (that first call includes any JIT compile) and checks its
results against a NumPy reference, then times the sides interleaved after warm-up and prints
medians, ranges, speedups over PyTorch eager, and for memory-bound workloads the achieved GB/s
against the copy bandwidth measured in the same run.
"""

from __future__ import annotations

import argparse
import sys

from . import compile_times
from .core import PEERS
from .report import format_table, plot, write_json
from .run import FULL, QUICK, run_suite
from .workloads import WORKLOADS, common

__all__ = ["main", "run_suite", "format_table", "WORKLOADS"]

SECTIONS = [*WORKLOADS, "compile"]


def _names(text: str, known, what: str, parser: argparse.ArgumentParser) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in known:
            parser.error(f"unknown {what} {name!r}; choose from {', '.join(known)}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llgrad-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated workloads (default: all of {', '.join(SECTIONS)}; "
                             "compile: first-step compile times in fresh processes)")
    parser.add_argument("--skip", default="", help=f"comma-separated peers to leave out: {', '.join(PEERS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (for tests)")
    parser.add_argument("--seconds", type=float,
                        help=f"timing budget per side and workload (default {FULL.seconds} s, quick "
                             f"{QUICK.seconds} s)")
    parser.add_argument("--json", metavar="FILE", help="write the raw numbers to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="draw a bar chart (needs matplotlib)")
    parser.add_argument("--warm-cache", action="store_true",
                        help="llgrad and torch.compile use their usual caches (default: fresh ones)")
    parser.add_argument("--llgrad-composite", action="store_true",
                        help="time llgrad's composites even where llgrad.nn.functional has the op")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the table; exit status 1 when a side failed its correctness check."""
    parser = _parser()
    args = parser.parse_args(argv)
    names = _names(args.only, SECTIONS, "workload", parser)
    compile_section = "compile" in names
    names = [n for n in names if n != "compile"]
    skip = set(_names(args.skip, PEERS, "peer", parser))
    common.USE_FUNCTIONAL = not args.llgrad_composite
    budget = QUICK if args.quick else FULL
    if args.seconds is not None:
        budget = type(budget)(**{**vars(budget), "seconds": args.seconds})
    progress = lambda m: print(m, file=sys.stderr, flush=True)
    run = run_suite(names, args.quick, skip, budget, progress=progress, warm_cache=args.warm_cache)
    print(format_table(run))
    if compile_section:
        run["compile"] = compile_times.run(args.quick, progress)
        print("\n" + compile_times.format_rows(run["compile"]))
    if args.json:
        write_json(run, args.json)
    if args.plot:
        problem = plot(run, args.plot)
        if problem:
            print(f"llgrad-bench: no plot: {problem}", file=sys.stderr)
    failed = [f"{row['workload']}/{name}" for row in run["results"] for name, side in row["sides"].items()
              if side["check"] in ("FAIL", "error")]
    if failed:
        print(f"llgrad-bench: correctness check failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0

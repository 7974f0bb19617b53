"""The compile section of the benchmark: how long the first step of a model takes, cold.

Each case runs in a fresh Python process with an empty disk cache of its own, so the time is
what a new user sees on the first step (scheduling, LLVM, linking), not a cache load. Sizes
grow along each case (layers, unrolled steps), so the table is the compile-time curve against
graph size: llgrad compiles each distinct kernel once, so a deeper net of the same layers
should cost little more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

# (case, sizes, sizes with --quick, target for the largest full size: seconds or None)
CASES = [
    ("tanh", (25, 50, 100, 200), (10, 20), 1.0),
    ("mlp", (12, 24, 48), (6, 12), 1.0),
    ("rnn", (8, 16, 32, 64), (4, 8), 2.0),
    ("cnn", (1,), (1,), 1.0),
]

DESCRIPTIONS = {
    "tanh": "4x4 tanh(h @ w) net, forward+backward; size = depth",
    "mlp": "128-wide ReLU MLP training step (SGD), batch 64; size = layers",
    "rnn": "char RNN (Embedding, Linear + tanh, 65 symbols, 128 wide), batch 16, forward+backward; "
           "size = unrolled steps",
    "cnn": "digits CNN training step (examples/digits_cnn.py's model, Adam), batch 64",
}

# The child: builds the case, runs one step, prints what it cost as JSON.
CHILD = r'''
import json, sys, time
case, n = sys.argv[1], int(sys.argv[2])
import llgrad
import llgrad.nn as nn
import llgrad.nn.functional as F
llgrad.manual_seed(0)
start = time.perf_counter()
if case == "tanh":
    ws = [(llgrad.randn(4, 4) * 0.5).requires_grad_() for _ in range(n)]
    h = llgrad.randn(2, 4)
    for w in ws:
        h = llgrad.tanh(h @ w)
    h.sum().backward()
    ws[0].grad.numpy()
elif case == "mlp":
    layers = []
    for _ in range(n):
        layers += [nn.Linear(128, 128), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(128, 10))
    opt = llgrad.optim.SGD(model.parameters(), lr=0.01)
    x, y = llgrad.randn(64, 128), llgrad.randint(0, 10, (64,))
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    loss.item()
elif case == "rnn":
    vocab, width = 65, 128
    emb, wx, wh, out = nn.Embedding(vocab, width), nn.Linear(width, width), nn.Linear(width, width), \
        nn.Linear(width, vocab)
    idx = llgrad.randint(0, vocab, (16, n + 1))
    h, loss = llgrad.zeros(16, width), 0.0
    for t in range(n):
        h = llgrad.tanh(wx(emb(idx[:, t])) + wh(h))
        loss = loss + F.cross_entropy(out(h), idx[:, t + 1])
    loss.backward()
    loss.item()
elif case == "cnn":
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10))
    opt = llgrad.optim.Adam(model.parameters(), lr=3e-3)
    x, y = llgrad.rand(64, 64), llgrad.randint(0, 10, (64,))
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    loss.item()
seconds = time.perf_counter() - start
stats = llgrad.runtime.stats()
print(json.dumps({"seconds": seconds, "programs": stats["compiles"], "nodes": stats["compiled_nodes"],
                  "kernels": stats["kernels"]["compiled"], "compile_seconds": stats["compile_seconds"]}))
'''


def run(quick: bool, progress=None) -> list[dict]:
    """One row per case and size: first-step seconds in a fresh process with an empty cache."""
    rows = []
    for case, sizes, quick_sizes, target in CASES:
        chosen = quick_sizes if quick else sizes
        for n in chosen:
            if progress:
                progress(f"compile {case} {n} ...")
            with tempfile.TemporaryDirectory(prefix="llgrad-bench-compile-") as cache:
                env = dict(os.environ, LLGRAD_CACHE="1", LLGRAD_CACHE_DIR=cache)
                done = subprocess.run([sys.executable, "-c", CHILD, case, str(n)], env=env,
                                      capture_output=True, text=True, timeout=1800)
            row = {"case": case, "size": n, "target_s": target if n == chosen[-1] and not quick else None}
            if done.returncode != 0:
                row["error"] = done.stderr.strip().splitlines()[-1][:200] if done.stderr.strip() else "failed"
            else:
                row.update(json.loads(done.stdout.strip().splitlines()[-1]))
            rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = ["compile: the first step in a fresh process with an empty cache (scheduling, LLVM, linking)",
             "", f"{'case':6s} {'size':>5s} {'nodes':>7s} {'programs':>8s} {'kernels':>8s} "
             f"{'first step s':>12s}  target"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['case']:6s} {r['size']:5d}  error: {r['error']}")
            continue
        target = ""
        if r["target_s"] is not None:
            target = f"<= {r['target_s']:.0f} s: {'met' if r['seconds'] <= r['target_s'] else 'NOT met'}"
        lines.append(f"{r['case']:6s} {r['size']:5d} {r['nodes']:7d} {r['programs']:8d} {r['kernels']:8d} "
                     f"{r['seconds']:12.2f}  {target}")
    lines.append("")
    lines += [f"  {case}: {text}" for case, text in DESCRIPTIONS.items()]
    lines.append("  nodes: graph nodes of the programs compiled; kernels: distinct kernels compiled (each "
                 "once, shared by every layer and step that has it)")
    return "\n".join(lines)

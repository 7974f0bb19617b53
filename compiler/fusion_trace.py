"""What the fusion scheduler decided, and why: the record behind `llgrad.debug.explain`.

The scheduler writes here as it decides (compiler/schedule.py calls `materialized`
and `refused` at the points where it makes each decision), so every reason
printed is the one that made the decision, not a guess after the fact.
Recording is opt-in (`schedule(..., trace=True)`): a trace holds graph
nodes, and compiled programs must not.

Also here: kernel names that say what a kernel is (`fused_exp_mul_sum_4096x1024`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Why a value gets a buffer (or a kernel of its own).
MATERIALIZED = {
    "output": "output needed by the user",
    "live": "a live tensor holds it, and this kernel computes it anyway",
    "reduction": "reduction: its result is complete only after the whole reduced loop",
    "matmul": "matmul: a kernel template of its own",
    "scatter": "scatter: a loop nest of its own (writes at run-time positions)",
    "scan": "scan: a running reduction, a loop nest of its own",
    "matmul_operand": "matmul operand: read many times, so computed once into memory",
    "gather_source": "read at run-time positions by an indexing op",
}

# Why a value could not join an earlier kernel.
REFUSED = {
    "own_loop": "kernel {g} is a {kind} loop nest of its own",
    "domain": "it loops over {mine}, kernel {g} over {theirs}",
    "axes": "it reduces dims {mine}, kernel {g} reduces dims {theirs}",
    "later": "it reads {value}, which kernel {owner} computes after kernel {g}",
    "dynamic": "it reads {value} at run-time positions: all of it must exist before the kernel starts",
    "broadcast": "it reads the reduction {value} of kernel {g} at another index "
                 "(a reduction feeding a broadcast needs the whole reduction first)",
    "shifted": "it reads {value} of kernel {g} at a shifted or permuted index (needs all of it first)",
    "post_reads_row": "a per-row value cannot read {value}, which kernel {g} computes per element",
    "no_phase": "kernel {g} has no phase after the values it reads",
    "no_reduction_loop": "it needs a reduction of kernel {g} finished, but that kernel has no reduction loop",
    "shape": "its shape {mine} is neither kernel {g}'s domain {theirs} nor its per-row shape",
    "unrelated": "it reads nothing kernel {g} computes (a per-row value joins only the kernel of its row)",
}


@dataclass
class FusionTrace:
    """Decisions of one scheduling run. Node ids refer to the simplified graph `roots`."""

    roots: list = field(default_factory=list)  # the simplified targets
    order: list = field(default_factory=list)  # every node, sources first
    why_materialized: dict = field(default_factory=dict)  # node id -> reason key
    refusals: dict = field(default_factory=dict)  # node id -> {group pos: (reason key, details)}
    dropped: list = field(default_factory=list)  # optional outputs no kernel stores
    groups: list = field(default_factory=list)  # the scheduler's groups, by kernel number
    mat: set = field(default_factory=set)  # ids of values with a buffer (or an accumulator)
    loaded: set = field(default_factory=set)  # ids of values some kernel reads from memory
    bufs: dict = field(default_factory=dict)  # node id -> its loop-IR buffer

    def materialized(self, node, why: str) -> None:
        self.why_materialized.setdefault(node.id, why)

    def refused(self, node, group, why: str, details: dict) -> None:
        self.refusals.setdefault(node.id, {})[group.pos] = (why, details)


def refusal_text(why: str, details: dict, group_pos: int, name_of=lambda n: f"%{n.id}") -> str:
    """The reason as a sentence; graph values in it are named by `name_of`."""
    shown = {k: (name_of(v) if hasattr(v, "op") else v) for k, v in details.items()}
    return REFUSED[why].format(g=f"k{group_pos}", **shown)


def group_nodes(sched, g) -> list:
    """The graph nodes a group computes: its stored values and everything inlined into them."""
    position = getattr(sched, "position", None)
    if position is None:  # (a trace, not the scheduler itself: made once, kept)
        position = sched.position = {n.id: i for i, n in enumerate(sched.order)}
        sched.by_position = list(sched.order)
    members = [sched.by_position[position[i]] for i in g.role if i in position]
    found: dict = {}
    stack = list(members)
    while stack:
        n = stack.pop()
        if n.id in found:
            continue
        found[n.id] = n
        for s in n.srcs:
            if s.buffer is not None or (not s.srcs and s.op.kind == "leaf") or s.id in found:
                continue
            if s.id in sched.mat and s.id not in g.role:
                continue  # another kernel's value: read from memory
            stack.append(s)
    return sorted(found.values(), key=lambda n: position[n.id])


def kernel_name(g, nodes: list) -> str:
    """`fused_exp_mul_sum_4096x1024`, `sum_64x10`, `matmul_64x10_k784`, `copy_2x2`."""
    if g.kind != "loop" and g.node is not None:
        m = g.node
        if g.kind == "matmul":
            a, b = m.srcs
            lead = "bmm" if len(m.shape) == 3 else "matmul"
            return f"{lead}_{'x'.join(map(str, m.shape))}_k{a.shape[-1]}"
        return f"{m.op.name}_{_shape(m.shape)}"
    nodes = sorted(nodes, key=lambda n: n.backward)  # forward ops first, each part in graph order
    ops = _distinct([n.op.name for n in nodes if n.op.kind not in ("movement", "leaf")])
    if len(ops) > 1 and "cast" in ops:  # a conversion says little about what a kernel does
        ops.remove("cast")
    if not ops:
        ops = _distinct([n.op.name for n in nodes if n.op.kind == "movement"])
    reductions = [n.op.name for n in nodes if n.op.kind == "reduce"]
    if len(ops) > 4:  # keep the reductions: they say most about a kernel
        keep = set(_distinct(reductions)[:4])
        keep |= set([o for o in ops if o not in keep][:4 - len(keep)])
        ops = [o for o in ops if o in keep] + ["etc"]
    if not ops:
        return f"copy_{_shape(g.domain)}"
    prefix = "fused_" if len(ops) > 1 else ""
    return f"{prefix}{'_'.join(ops)}_{_shape(g.domain)}"


def unique_names(kernels: list) -> None:
    """Number repeated kernel names within one program (`sum_64_1`): they name LLVM functions."""
    seen: dict = {}
    for k in kernels:
        n = seen.get(k.name, 0)
        seen[k.name] = n + 1
        if n:
            k.name = f"{k.name}_{n}"


def _distinct(names: list) -> list:
    return list(dict.fromkeys(names))


def _shape(shape: tuple) -> str:
    return "x".join(map(str, shape)) or "scalar"

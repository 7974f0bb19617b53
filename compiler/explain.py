"""Fusion explained: which ops each kernel fused, and why every kernel boundary is where it is.

Reads a `FusionTrace` (the reasons the scheduler recorded as it decided) and
names values as the `optimized` dump does (`%3`, `%in0`, `%p1`), so the two can
be read side by side. Also a Graphviz DOT view with one cluster per kernel.
"""

from __future__ import annotations

from .fusion_trace import MATERIALIZED, FusionTrace, group_nodes, refusal_text
from .graph import Node
from .mlir_loc import display_path, position
from .mlir_scalar import param_type
from .printer import MlirModule, leaf_args, tensor_type


class Names:
    """SSA names of the simplified graph, exactly as the optimized dump prints them."""

    def __init__(self, trace: FusionTrace, inputs: list, params: list) -> None:
        from .printer import FunctionPrinter

        self.args = leaf_args(inputs, params)
        printer = FunctionPrinter(MlirModule(), "explain", list(trace.roots), self.args)
        printer.build()
        self.names = printer.names
        self.printer = printer

    def __call__(self, node: Node) -> str:
        if node.id in self.args:
            return self.args[node.id][0]
        if node.op.name == "const" and not node.srcs:
            return repr(node.attrs["value"])
        return self.names.get(node.id, f"%?{node.id}")


def _op_text(node: Node, name_of: Names) -> str:
    srcs = ", ".join(name_of(s) for s in node.srcs)
    attrs = ""
    shown = {k: v for k, v in node.attrs.items() if k not in ("dtype",) or node.op.name == "cast"}
    if shown:
        attrs = " {" + ", ".join(f"{k}={_attr(v)}" for k, v in shown.items()) + "}"
    mark = " [backward]" if name_of.printer.is_backward(node) else ""
    return f"{name_of(node)} = {node.op.name}({srcs}){attrs} : {tensor_type(node)}{mark}"


def _attr(v) -> str:
    if hasattr(v, "np"):
        return v.name
    return str(v).replace(" ", "")


def _where(node: Node, name_of: Names) -> str:
    pos = position(node.loc if node.loc is not None else name_of.printer.marks.get(node.id, (None,))[0])
    return f"  ({display_path(pos[0])}:{pos[1]})" if pos else ""


def _group_kind(g) -> str:
    if g.kind != "loop":
        return f"{g.kind} loop nest over {'x'.join(map(str, g.domain)) or 'a scalar'}"
    dims = "x".join(map(str, g.domain)) or "a scalar"
    if g.axes:
        return f"loop over {dims}, reducing dim{'s' if len(g.axes) > 1 else ''} " \
               f"{', '.join(map(str, g.axes))}, {len(g.phases)} phase{'s' if len(g.phases) > 1 else ''}"
    return f"loop over {dims}"


def explain_text(trace: FusionTrace, kernels: list, inputs: list, params: list, title: str = "") -> str:
    """The kernels of one program, what each fused, and the reason for each boundary."""
    name_of = Names(trace, inputs, params)
    producer = {nid: g.pos for g in trace.groups for nid in g.role}
    lines = [title] if title else []
    lines.append(f"{len(kernels)} kernel{'s' if len(kernels) != 1 else ''}"
                 f" (values named as in the `optimized` dump)")
    for g, k in zip(trace.groups, kernels):
        nodes = group_nodes(trace, g)
        lines.append("")
        lines.append(f"kernel {g.pos}: {k.name}  ({_group_kind(g)})")
        first = next((n for n in trace.order if n.id in g.role), None)
        if first is not None:
            lines += _boundary(first, g, trace, name_of)
        lines.append("  fuses:")
        for n in nodes:
            lines.append(f"    {_op_text(n, name_of)}{_where(n, name_of)}")
        reads = _reads(nodes, g, trace, producer)
        if reads:
            lines.append("  reads:")
            for s, owner in reads:
                if owner is None:
                    lines.append(f"    {name_of(s)} {tensor_type(s)} (an input buffer)")
                else:
                    why = MATERIALIZED.get(trace.why_materialized.get(s.id, ""), "")
                    lines.append(f"    {name_of(s)} from kernel {owner}" + (f": {why}" if why else ""))
        lines.append("  writes:")
        wrote = False
        for n in nodes:
            if n.id not in g.role:
                continue
            buf = trace.bufs.get(n.id)
            why = MATERIALIZED.get(trace.why_materialized.get(n.id, ""), "")
            if buf is None:
                lines.append(f"    {name_of(n)} stays in a register (a reduction read only in this kernel)")
                continue
            wrote = True
            lines.append(f"    {name_of(n)} -> buffer {buf.name}" + (f" ({why})" if why else ""))
        if not wrote and not any(n.id in g.role for n in nodes):
            lines.append("    (nothing)")
    for n in trace.dropped:
        lines.append("")
        lines.append(f"not stored: {name_of(n)}, held by a live tensor: no kernel computes it whole "
                     "(it is inlined where it is read), so it is computed only if asked for")
    return "\n".join(lines) + "\n"


def _boundary(first: Node, g, trace: FusionTrace, name_of) -> list:
    """Why the kernel's first value could not join any earlier kernel."""
    what = f"{name_of(first)} ({first.op.name})"
    if g.kind != "loop":
        return [f"  starts with {what}: {MATERIALIZED.get(g.kind, g.kind)}"]
    if g.pos == 0:
        return [f"  starts with {what}: the first kernel of the program"]
    refusals = trace.refusals.get(first.id, {})
    out = [f"  starts with {what}, which could not join an earlier kernel:"]
    for pos in range(g.pos):
        got = refusals.get(pos)
        text = refusal_text(got[0], got[1], pos, name_of) if got else "(no reason recorded)"
        out.append(f"    k{pos}: {text}")
    return out


def _reads(nodes: list, g, trace: FusionTrace, producer: dict) -> list:
    seen, out = set(), []
    for n in nodes:
        for s in n.srcs:
            if s.id in seen or s.id in g.role:
                continue
            if s.buffer is not None:
                seen.add(s.id)
                out.append((s, None))
            elif s.id in trace.mat and s.id in producer and producer[s.id] != g.pos:
                seen.add(s.id)
                out.append((s, producer[s.id]))
    return out


def to_dot(trace: FusionTrace, kernels: list, inputs: list, params: list, name: str = "llgrad") -> str:
    """Graphviz DOT of the simplified graph, one cluster per kernel; stored values drawn double."""
    name_of = Names(trace, inputs, params)
    producer = {}
    members = {}
    for g in trace.groups:
        for n in group_nodes(trace, g):
            members.setdefault(n.id, g.pos)
        for nid in g.role:
            producer[nid] = g.pos
    lines = [f'digraph "{name}" {{', "  rankdir=TB;",
             '  node [shape=box, fontname="monospace", fontsize=10];']

    def node_id(n: Node) -> str:
        return f"n{n.id}"

    def label(n: Node) -> str:
        return f"{name_of(n)} {n.op.name}\\n{tensor_type(n)}".replace('"', '\\"')

    def style(n: Node) -> str:
        parts = [f'label="{label(n)}"']
        if n.id in trace.mat and n.id in producer:
            parts.append("peripheries=2")
        if n.backward:
            parts.append('color="firebrick"')
        return ", ".join(parts)

    for g, k in zip(trace.groups, kernels):
        lines.append(f"  subgraph cluster_k{g.pos} {{")
        lines.append(f'    label="k{g.pos} {k.name}"; style=rounded; color=gray40;')
        for n in trace.order:
            if members.get(n.id) == g.pos:
                lines.append(f"    {node_id(n)} [{style(n)}];")
        lines.append("  }")
    for n in trace.order:
        if n.id in members:
            continue
        if n.buffer is not None:
            lines.append(f'  {node_id(n)} [label="{name_of(n)}\\n{tensor_type(n)}", shape=ellipse];')
        elif n.op.kind == "leaf" and n.op.name == "param":
            lines.append(f'  {node_id(n)} [label="{name_of(n)}\\n{param_type(n.dtype)}", shape=plain];')
    shown = set(members) | {n.id for n in trace.order if n.buffer is not None or n.op.name == "param"}
    edges: dict = {}
    for n in trace.order:
        if n.id not in members:
            continue
        for s in n.srcs:
            if s.id in shown:
                edges[(node_id(s), node_id(n))] = None
    lines += [f"  {a} -> {b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"

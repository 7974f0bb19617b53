"""Text form of the graph IR: short SSA names, a type on every value, MLIR-flavoured.

    func.func @forward(%arg0: tensor<2x2xf32>, %s0: f32) -> tensor<f32> {
      %0 = llgrad.add %arg0, %s0 : tensor<2x2xf32>
      ...
      return %3 : tensor<f32>
    }

Realized buffers are function arguments, Python scalars are scalar arguments
(`%s0`), constants print inline. Nodes that autodiff made carry `{backward}`.
"""

from __future__ import annotations

from .graph import Node

_SHORT = {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32", "bool": "i1"}


def tensor_type(node: Node) -> str:
    dims = "".join(f"{n}x" for n in node.shape)
    return f"tensor<{dims}{_SHORT[node.dtype.name]}>"


def _attr(v) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_attr(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if hasattr(v, "np"):  # a DType
        return _SHORT[v.name]
    return repr(v)


def format_graph(targets: list[Node], name: str = "graph") -> str:
    names: dict[int, str] = {}
    args: list[str] = []
    lines: list[str] = []
    order: list[Node] = []
    seen: set[int] = set()
    for root in targets:
        stack = [(root, False)]
        while stack:
            n, ready = stack.pop()
            if n.id in seen:
                continue
            if ready or n.buffer is not None or not n.srcs:
                seen.add(n.id)
                order.append(n)
                continue
            stack.append((n, True))
            stack.extend((s, False) for s in reversed(n.srcs) if s.id not in seen)
    counter = 0
    for n in order:
        if n.buffer is not None:
            names[n.id] = f"%arg{len(args)}"
            args.append(f"{names[n.id]}: {tensor_type(n)}")
        elif n.op.name == "param":
            names[n.id] = f"%s{sum(a.startswith('%s') for a in args)}"
            args.append(f"{names[n.id]}: {_SHORT[n.dtype.name]}")
        elif n.op.name == "const":
            names[n.id] = f"{_attr(n.attrs['value'])}:{_SHORT[n.dtype.name]}"
        else:
            names[n.id] = f"%{counter}"
            counter += 1
            attrs = {k: v for k, v in n.attrs.items()}
            if n.backward:
                attrs["backward"] = True
            attr_text = ""
            if attrs:
                attr_text = " {" + ", ".join(k if v is True and k == "backward" else f"{k} = {_attr(v)}"
                                             for k, v in attrs.items()) + "}"
            operands = ", ".join(names[s.id] for s in n.srcs)
            lines.append(f"  {names[n.id]} = llgrad.{n.op.name} {operands}{attr_text} : {tensor_type(n)}")
    results = ", ".join(names[t.id] for t in targets)
    types = ", ".join(tensor_type(t) for t in targets)
    header = f"func.func @{name}({', '.join(args)}) -> ({types}) {{"
    return "\n".join([header, *lines, f"  return {results} : {types}", "}"])

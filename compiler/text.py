"""The compact text form of a graph, read like a jaxpr: one line per op.

    { lambda in0:f32[2,2] ; p0:f32=2.0 p1:i64=3 .
      let %0:f32[2,2] = add in0 p0                  # tutorial.py:4
          %1:f32[2,2] = mul %0 %0                   # tutorial.py:5
          %2:f32[] = mean[dims=None keepdim=False] %1   (backward)
      in ( %2 ) }

Inputs (computed buffers) come before `;`, Python numbers (run-time scalars, with the value
they have now) after it; constants are written in place. The MLIR form of the same graph
(compiler/printer.py) is what LLGRAD_DUMP and the MLIR tools read.
"""

from __future__ import annotations

from .graph import Node
from .mlir_loc import display_path, position
from .walk import postorder

_SHORT = {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32", "bool": "bool"}


def type_of(node: Node) -> str:
    return f"{_SHORT[node.dtype.name]}[{','.join(map(str, node.shape))}]"


def format_compact(roots: list[Node]) -> str:
    names: dict[int, str] = {}
    inputs, params, lines = [], [], []
    for n in postorder(roots):
        if n.buffer is not None:
            names[n.id] = f"in{len(inputs)}"
            inputs.append(f"{names[n.id]}:{type_of(n)}")
        elif not n.srcs and n.op.name == "param":
            names[n.id] = f"p{len(params)}"
            params.append(f"{names[n.id]}:{_SHORT[n.dtype.name]}={n.value!r}")
        elif not n.srcs and n.op.name == "const":
            names[n.id] = f"{n.attrs['value']!r}:{_SHORT[n.dtype.name]}"
        else:
            names[n.id] = f"%{len(lines)}"
            attrs = " ".join(f"{k}={v!r}" for k, v in n.attrs.items())
            op = f"{n.op.name}[{attrs}]" if attrs else n.op.name
            text = f"{names[n.id]}:{type_of(n)} = {op} {' '.join(names[s.id] for s in n.srcs)}".rstrip()
            where = position(n.loc)
            notes = ([f"{display_path(where[0])}:{where[1]}"] if where else []) + (["backward"] if n.backward
                                                                                    else [])
            lines.append(f"{text:<48}  # {'  '.join(notes)}" if notes else text)
    head = "{ lambda " + " ".join(inputs) + " ; " + " ".join(params) + " ."
    body = ["  let " + lines[0]] + ["      " + ln for ln in lines[1:]] if lines else []
    tail = "  in ( " + ", ".join(names[r.id] for r in roots) + " ) }"
    return "\n".join([head, *body, tail])

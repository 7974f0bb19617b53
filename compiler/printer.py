"""The graph IR as MLIR: `func.func` on tensors, `linalg` ops with `arith`/`math` bodies.

The text is valid upstream MLIR (mlir-opt 19 verifies it without
--allow-unregistered-dialect) and reads like a jaxpr: one op per graph node,
short SSA names, a type on every value, the user's source line above the ops
it made and as each op's `loc(...)`, backward ops tagged `{llgrad.backward}`.

    func.func @forward(%in0: tensor<2x2xf32>, %p3: i64, ...) -> (tensor<f32>, ...) {
      // tutorial.py:4  y = x + 2
      %e0 = tensor.empty() : tensor<2x2xf32> loc(#loc4)
      %0 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = [...]}
          ins(%in0 : tensor<2x2xf32>) outs(%e0 : tensor<2x2xf32>) {
      ^bb0(%a0: f32, %out: f32):
        %t0 = arith.sitofp %p3 : i64 to f32 loc(#loc4)
        ...
    #loc4 = loc("tutorial.py":4:5)

Elementwise ops, broadcasts and views are `linalg.generic` (broadcasts and views
as indexing maps), reductions `linalg.generic` with reduction iterators into a
`linalg.fill`ed init, matmuls `linalg.matmul`/`linalg.batch_matmul`, permutes
`linalg.transpose`, slices `tensor.extract_slice`, gathers and concatenations
`tensor.extract` at computed positions, scans a generic with one more loop,
scatters an `scf.for` nest of `tensor.insert`. An op with no such form would be
a call of a private function (valid, but opaque).

Naming: realized inputs are `%in<slot>` and Python scalars `%p<slot>` (the
program's buffer and parameter slots, as in the kernel dump), graph values
`%0, %1, ...`, their init tensors `%e<n>`. Scalars travel as f64/i64/i1 (the
program ABI's 8-byte slots) and are converted inside the bodies exactly as the
generated code converts them. Broadcasts and views are indexing maps, so the
module is a faithful description of the computation and can be compiled by
MLIR's own pipeline (see runtime/mlir_backend.py).
"""

from __future__ import annotations

from .dtypes import bool_, int64
from .graph import Node
from .index import FloorDiv, Sym, Var
from .mlir_loc import LocTable, comment, position
from .mlir_scalar import (
    ScalarBuilder,
    in_window,
    index_value,
    mlir_type,
    param_dtype,
    param_type,
)
from .ops import OPS
from .scalar import REDUCTIONS
from .walk import postorder

_ITER = {True: '"reduction"', False: '"parallel"'}


def tensor_type(node_or_shape, dtype=None) -> str:
    if isinstance(node_or_shape, Node):
        shape, dtype = node_or_shape.shape, node_or_shape.dtype
    else:
        shape = node_or_shape
    return "tensor<" + "".join(f"{n}x" for n in shape) + mlir_type(dtype) + ">"


def affine(sym: Sym, dims: dict) -> str:
    """A symbolic index as an affine expression over the dims named in `dims` (Var -> "d0")."""
    parts = []
    for atom, coeff in sym.terms:
        if isinstance(atom, Var):
            term = dims[atom]
        else:
            op = "floordiv" if isinstance(atom, FloorDiv) else "mod"
            term = f"({affine(atom.expr, dims)}) {op} {atom.divisor}"
        parts.append(term if coeff == 1 else f"{term} * {coeff}")
    if sym.const or not parts:
        parts.append(str(sym.const))
    return " + ".join(parts)


class MlirModule:
    """Collects what a module needs besides its functions: map aliases, declarations, locations."""

    def __init__(self) -> None:
        self.maps: dict[str, str] = {}
        self.decls: dict[str, str] = {}
        self.locs = LocTable()
        self.functions: list[str] = []

    def map(self, n_dims: int, results: list[str]) -> str:
        dims = ", ".join(f"d{k}" for k in range(n_dims))
        text = f"affine_map<({dims}) -> ({', '.join(results)})>"
        alias = self.maps.get(text)
        if alias is None:
            if results == [f"d{k}" for k in range(n_dims)]:
                alias = f"#id{n_dims}"
            elif not results:
                alias = f"#scalar{n_dims}"
            else:
                alias = f"#map{sum(a.startswith('#map') for a in self.maps.values())}"
            self.maps[text] = alias
        return alias

    def text(self, title: str = "") -> str:
        lines = [f"// {line}" for line in title.splitlines()]
        lines += [f"{alias} = {text}" for text, alias in self.maps.items()]
        lines.append("module {")
        lines += [f"  {d}" for d in self.decls.values()]
        for fn in self.functions:
            lines.append(fn)
        lines.append("}")
        lines += self.locs.definitions()
        return "\n".join(lines) + "\n"


def topo_order(roots: list[Node], stop=None) -> list[Node]:
    """Nodes reachable from `roots`, sources first (walk.postorder)."""
    return postorder(roots, stop)


def inherited_marks(order: list[Node]) -> dict:
    """node id -> (loc, backward) of a consumer, for nodes made without a source location
    (the parts of a decomposed op, like the `sum` of a `mean`): they were written there too."""
    marks: dict = {}
    for n in reversed(order):  # consumers come after their sources
        mark = (n.loc, n.backward) if n.loc is not None else marks.get(n.id)
        if mark is None:
            continue
        for s in n.srcs:
            if s.loc is None and s.id not in marks and s.srcs:
                marks[s.id] = mark
    return marks


class FunctionPrinter:
    """One `func.func` computing `results` from its arguments.

    args: node id -> (SSA name, MLIR type, sort key) for values that come in
    as arguments (realized inputs, Python scalars, and for a backward function
    the forward values it reads). Arguments are listed in sort-key order, and
    only those the function uses.
    """

    def __init__(self, module: MlirModule, name: str, results: list[Node], args: dict,
                 mark_backward: bool = True, destinations: list | None = None) -> None:
        self.module = module
        self.name = name
        self.results = results
        self.args = args
        self.mark_backward = mark_backward
        # Destination-passing style (for MLIR's own lowering): per result, the name of an
        # output tensor argument it is copied into, or None to leave it out.
        self.destinations = destinations
        self.names: dict[int, str] = {}  # node id -> SSA name of its tensor (or scalar arg)
        self.used_args: set[int] = set()
        self.lines: list[str] = []
        self.count = 0
        self.last_line = None
        self.filled: dict = {}

    # -- driving ------------------------------------------------------------------
    def build(self) -> dict:
        self.marks = inherited_marks(topo_order(self.results))
        # Forward results first: the function then reads top to bottom like the user's script.
        self.emit_all(sorted(self.results, key=lambda r: r.backward))
        values = [self.tensor(r) for r in self.results]
        types = [tensor_type(r) for r in self.results]
        signature = [(key, f"{name}: {ty}") for nid, (name, ty, key) in self.args.items()
                     if nid in self.used_args]
        if self.destinations is not None:
            values, types = self._copy_out(values, signature)
        self.signature = sorted(signature)  # (sort key, "name: type"): the argument order
        params = ", ".join(text for _, text in self.signature)
        ret_types = types[0] if len(types) == 1 else f"({', '.join(types)})"
        head = f"  func.func @{self.name}({params}) -> {ret_types} {{" if types else \
            f"  func.func @{self.name}({params}) {{"
        tail = f"    return {', '.join(values)} : {', '.join(types)}" if types else "    return"
        self.module.functions.append("\n".join([head, *self.lines, tail, "  }"]))
        return self.names

    def _copy_out(self, values: list, signature: list) -> tuple[list, list]:
        """Copy each result into its output argument; those copies are the results."""
        out_values, out_types = [], []
        for k, (r, value, dest) in enumerate(zip(self.results, values, self.destinations)):
            if dest is None:
                continue
            ty = tensor_type(r)
            signature.append(((3, k), f"{dest}: {ty}"))
            ident = self.module.map(len(r.shape), [f"d{i}" for i in range(len(r.shape))])
            par = ", ".join(['"parallel"'] * len(r.shape))
            copy = f"%r{k}"
            elem = mlir_type(r.dtype)
            self.lines += [
                f"    {copy} = linalg.generic {{indexing_maps = [{ident}, {ident}], "
                f"iterator_types = [{par}]}}"
                f" ins({value} : {ty}) outs({dest} : {ty}) {{",
                f"    ^bb0(%a0: {elem}, %out: {elem}):",
                f"      linalg.yield %a0 : {elem}",
                f"    }} -> {ty}"]
            out_values.append(copy)
            out_types.append(ty)
        return out_values, out_types

    def emit_all(self, roots: list[Node]) -> None:
        for n in topo_order(roots, stop=lambda n: n.id in self.names or n.id in self.args):
            if n.id not in self.names:
                self.emit(n)

    def new_name(self) -> str:
        name = f"%{self.count}"
        self.count += 1
        return name

    def loc_of(self, node: Node) -> str:
        pos = position(node.loc if node.loc is not None else self.marks.get(node.id, (None, False))[0])
        if pos is not None and pos[:2] != self.last_line:
            self.lines.append(f"    // {comment(pos)}")
            self.last_line = pos[:2]
        return self.module.locs.ref(pos)

    def is_backward(self, node: Node) -> bool:
        return node.backward or (node.loc is None and self.marks.get(node.id, (None, False))[1])

    def backward_attr(self, node: Node) -> str:
        return "llgrad.backward" if self.mark_backward and self.is_backward(node) else ""

    # -- operands -------------------------------------------------------------------
    def scalar_leaf(self, node: Node) -> bool:
        return node.buffer is None and node.op.kind == "leaf" and node.op.name in ("param", "const")

    def arg(self, node: Node) -> str | None:
        got = self.args.get(node.id)
        if got is not None:
            self.used_args.add(node.id)
            return got[0]
        return None

    def tensor(self, node: Node) -> str:
        """The SSA tensor holding `node` (scalars become 0-d tensors where a tensor is needed)."""
        name = self.arg(node)
        if name is not None and not self.scalar_leaf(node):
            return name
        if node.id in self.names:
            return self.names[node.id]
        if self.scalar_leaf(node):
            return self.fill(node)
        self.emit_all([node])
        return self.names[node.id]

    def scalar(self, b: ScalarBuilder, node: Node, dt) -> str:
        """A Python scalar's value inside a body, converted to `dt` as codegen converts it."""
        if node.op.name == "const":
            return b.const(node.attrs["value"], dt)
        return b.convert(self.arg(node), param_dtype(node.dtype), dt)

    def fill(self, node: Node) -> str:
        if node.id in self.filled:
            return self.filled[node.id]
        loc = self.loc_of(node)
        out = self.new_name()
        init = f"%e{out[1:]}"
        ty = tensor_type(node)
        self.lines.append(f"    {init} = tensor.empty() : {ty}{loc}")
        body: list[str] = []
        b = ScalarBuilder(body, "      ", "t", loc, self.module.decls)
        value = self.scalar(b, node, node.dtype)
        self.lines.append(f"    {out} = linalg.generic {{indexing_maps = [{self.module.map(0, [])}], "
                          f"iterator_types = []}} outs({init} : {ty}) {{")
        self.lines.append(f"    ^bb0(%out: {mlir_type(node.dtype)}):")
        self.lines += body
        self.lines.append(f"      linalg.yield {value} : {mlir_type(node.dtype)}{loc}")
        self.lines.append(f"    }} -> {ty}{loc}")
        self.filled[node.id] = out
        return out

    # -- one node ---------------------------------------------------------------------
    def emit(self, node: Node) -> None:
        kind = node.op.kind
        if self.scalar_leaf(node) or node.id in self.args:
            return  # used in bodies directly, or an argument
        if kind == "composite":
            self.composite(node)
        elif kind == "elementwise":
            self.elementwise(node)
        elif kind == "movement":
            self.movement(node)
        elif kind == "reduce":
            self.reduce(node)
        elif kind == "matmul":
            self.matmul(node)
        elif kind == "iota":
            self.iota(node)
        elif kind == "gather":
            self.gather(node)
        elif kind == "scan":
            self.scan(node)
        elif kind == "scatter" and node.op.name in ("scatter_add", "index_put"):
            self.scatter(node)
        else:
            self.opaque(node)

    def composite(self, node: Node) -> None:
        from .ops import IREmitter

        result = node.op.decompose(IREmitter(backward=node.backward), node.srcs, node.attrs)
        for n in topo_order([result], stop=lambda n: n.id in self.names or n.id in self.args):
            if n.loc is None and n.buffer is None and n.srcs:
                n.loc = node.loc  # the decomposition's ops were written where the composite was
        self.emit_all([result])
        self.names[node.id] = self.tensor(result)

    def generic(self, node: Node, inputs: list, maps: list, iters: list, body_fn, out_map=None,
                init: str | None = None) -> None:
        """`linalg.generic` writing `node`: inputs are (SSA, type); body_fn(b, block_args) -> value."""
        loc = self.loc_of(node)
        ty = tensor_type(node)
        out = self.new_name()
        if init is None:
            init = f"%e{out[1:]}"
            self.lines.append(f"    {init} = tensor.empty() : {ty}{loc}")
        rank = len(iters)
        out_map = out_map or self.module.map(rank, [f"d{k}" for k in range(len(node.shape))])
        attrs = [f"indexing_maps = [{', '.join(maps + [out_map])}]",
                 f"iterator_types = [{', '.join(_ITER[r] for r in iters)}]"]
        if self.backward_attr(node):
            attrs.append(self.backward_attr(node))
        ins = ""
        if inputs:
            ins = f" ins({', '.join(n for n, _ in inputs)} : {', '.join(t for _, t in inputs)})"
        self.lines.append(f"    {out} = linalg.generic {{{', '.join(attrs)}}}{ins} outs({init} : {ty}) {{")
        block = [f"%a{k}" for k in range(len(inputs))]
        elem = [t[t.rindex("x") + 1:-1] if "x" in t[7:] else t[7:-1] for _, t in inputs]
        sig = ", ".join(f"{a}: {t}" for a, t in zip(block, elem))
        sig = f"{sig}, %out: {mlir_type(node.dtype)}" if sig else f"%out: {mlir_type(node.dtype)}"
        self.lines.append(f"    ^bb0({sig}):")
        body: list[str] = []
        b = ScalarBuilder(body, "      ", "t", loc, self.module.decls)
        value = body_fn(b, block)
        self.lines += body
        self.lines.append(f"      linalg.yield {value} : {mlir_type(node.dtype)}{loc}")
        self.lines.append(f"    }} -> {ty}{loc}")
        self.names[node.id] = out

    def _dims(self, shape: tuple) -> tuple:
        vars_ = tuple(Var(f"d{k}", n) for k, n in enumerate(shape))
        return vars_, tuple(Sym.var(v) for v in vars_), {v: v.name for v in vars_}

    def elementwise(self, node: Node) -> None:
        from .schedule import src_indices

        vars_, idx, dims = self._dims(node.shape)
        inputs, maps, slots = [], [], []
        for src, sidx, _ in src_indices(node, idx):
            if self.scalar_leaf(src):
                slots.append(src)
                continue
            slots.append(len(inputs))
            inputs.append((self.tensor(src), tensor_type(src)))
            maps.append(self.module.map(len(vars_), [affine(s, dims) for s in sidx]))
        arg_dtypes, compute = node.op.compute(node)

        def body(b: ScalarBuilder, block: list) -> str:
            args = []
            for slot, src, dt in zip(slots, node.srcs, arg_dtypes):
                if isinstance(slot, Node):
                    args.append(self.scalar(b, src, dt))
                else:
                    args.append(b.convert(block[slot], src.dtype, dt))
            return node.op.scalar(b, args, compute, node.attrs)

        self.generic(node, inputs, maps, [False] * len(vars_), body)

    def movement(self, node: Node) -> None:
        from .schedule import src_indices

        vars_, idx, dims = self._dims(node.shape)
        reads = src_indices(node, idx)
        if len(reads) == 1 and reads[0][2] is None and not self.scalar_leaf(reads[0][0]):
            src, sidx, _ = reads[0]
            if node.op.name == "permute" and len(node.shape) > 1:
                loc = self.loc_of(node)
                out = self.new_name()
                init = f"%e{out[1:]}"
                perm = ", ".join(map(str, node.attrs["dims"]))
                mark = f" {{{self.backward_attr(node)}}}" if self.backward_attr(node) else ""
                self.lines.append(f"    {init} = tensor.empty() : {tensor_type(node)}{loc}")
                self.lines.append(f"    {out} = linalg.transpose ins({self.tensor(src)} : "
                                  f"{tensor_type(src)}) outs({init} : {tensor_type(node)}) "
                                  f"permutation = [{perm}]{mark}{loc}")
                self.names[node.id] = out
                return
            if node.op.name == "slice":
                self.extract_slice(node, src)
                return
            results = [affine(s, dims) for s in sidx]
            if src.shape == node.shape and results == [f"d{k}" for k in range(len(vars_))]:
                self.names[node.id] = self.tensor(src)  # a view that changes nothing
                return
            if _map_fits(sidx, src.shape):
                self.generic(node, [(self.tensor(src), tensor_type(src))],
                             [self.module.map(len(vars_), results)], [False] * len(vars_),
                             lambda b, block: block[0])
                return
        self.generic(node, [], [], [False] * len(vars_), lambda b, block: self._pieces(b, node, reads, vars_))

    def extract_slice(self, node: Node, src: Node) -> None:
        a = node.attrs
        rank = len(src.shape)
        offsets = [a["start"] if k == a["dim"] else 0 for k in range(rank)]
        strides = [a["step"] if k == a["dim"] else 1 for k in range(rank)]
        loc = self.loc_of(node)
        out = self.new_name()
        self.lines.append(f"    {out} = tensor.extract_slice {self.tensor(src)}{offsets} {list(node.shape)} "
                          f"{strides} : {tensor_type(src)} to {tensor_type(node)}{loc}")
        self.names[node.id] = out

    def _pieces(self, b: ScalarBuilder, node: Node, reads: list, vars_: tuple) -> str:
        """Reads at computed positions (cat, embed): each inside its window, zero elsewhere."""
        at = {v: b.op(f"linalg.index {k} : index") for k, v in enumerate(vars_) if v.extent > 1}
        result = None  # zero outside every window (made only when some read has a window)
        for src, sidx, window in reversed(reads):
            cond = None
            if window is not None:
                cond = in_window(b, index_value(b, window[0], at), *window[1:])
            if self.scalar_leaf(src):
                value = self.scalar(b, src, src.dtype)
            else:
                pos = [index_value(b, s, at) for s in sidx]
                if cond is not None:
                    pos = [b.op(f"arith.select {cond}, {p}, {b.index_const(0)} : index") for p in pos]
                value = b.op(f"tensor.extract {self.tensor(src)}[{', '.join(pos)}] : {tensor_type(src)}")
            value = b.convert(value, src.dtype, node.dtype)
            if cond is None:
                result = value
            else:
                other = b.const(0, node.dtype) if result is None else result
                result = b.select(cond, value, other, node.dtype)
        return result

    def gather(self, node: Node) -> None:
        from .schedule import gather_index_reads

        vars_, idx, dims = self._dims(node.shape)
        x = node.srcs[0]
        reads = gather_index_reads(node, idx)
        inputs = [(self.tensor(t), tensor_type(t)) for t, _, _ in reads]
        maps = [self.module.map(len(vars_), [affine(s, dims) for s in sidx]) for _, sidx, _ in reads]
        start, count = node.attrs["start"], node.attrs["count"]
        nb = len(node.shape) - (len(x.shape) - count)

        def body(b: ScalarBuilder, block: list) -> str:
            at = {v: b.op(f"linalg.index {k} : index") for k, v in enumerate(vars_) if v.extent > 1}
            static = idx[:start] + (Sym.of(0),) * count + idx[start + nb:]
            pos = [index_value(b, s, at) for s in static]
            for j, (t, _, _) in enumerate(reads):
                v = b.convert(block[j], t.dtype, int64)
                n = b.const(x.shape[start + j], int64)
                wrapped = b.select(b.compare("<", v, b.const(0, int64), int64),
                                   b.binary("add", v, n, int64), v, int64)
                pos[start + j] = b.op(f"arith.index_cast {wrapped} : i64 to index")
            return b.op(f"tensor.extract {self.tensor(x)}[{', '.join(pos)}] : {tensor_type(x)}")

        self.generic(node, inputs, maps, [False] * len(vars_), body)

    def init_filled(self, node: Node, value_fn, dtype=None, suffix: str = "") -> str:
        """tensor.empty + linalg.fill with an identity value (reduction and matmul accumulators)."""
        dtype = node.dtype if dtype is None else dtype
        loc = self.loc_of(node)
        ty = tensor_type(node.shape, dtype)
        empty = f"%e{self.count}{suffix}"
        self.lines.append(f"    {empty} = tensor.empty() : {ty}{loc}")
        b = ScalarBuilder(self.lines, "    ", f"c{self.count}{suffix}_", loc, self.module.decls)
        value = value_fn(b)
        filled = f"%f{self.count}{suffix}"
        self.lines.append(f"    {filled} = linalg.fill ins({value} : {mlir_type(dtype)}) "
                          f"outs({empty} : {ty}) -> {ty}{loc}")
        return filled

    def reduce(self, node: Node) -> None:
        from .ops.reduce import axes as reduce_axes

        src = node.srcs[0]
        kind = node.op.reduce
        ax = set(reduce_axes(node))
        vars_, idx, dims = self._dims(src.shape)
        keep = node.attrs.get("keepdim")
        out = [("0" if keep else None) if k in ax else f"d{k}" for k in range(len(src.shape))]
        out_map = self.module.map(len(vars_), [r for r in out if r is not None])
        iters = [k in ax for k in range(len(src.shape))]
        in_map = self.module.map(len(vars_), [f"d{k}" for k in range(len(vars_))])
        acc_dt = node.dtype if kind in ("sum", "prod") else src.dtype
        if kind.startswith("arg"):
            self._arg_reduce(node, src, ax, vars_, in_map, out_map, iters)
            return
        reduction = REDUCTIONS[kind]
        init = self.init_filled(node, lambda b: b.const(reduction.identity(acc_dt), acc_dt))

        def body(b: ScalarBuilder, block: list) -> str:
            v = b.convert(block[0], src.dtype, acc_dt)
            return reduction.combine(b, "%out", v, acc_dt)

        self.generic(node, [(self.tensor(src), tensor_type(src))], [in_map], iters, body, out_map, init)

    def _arg_reduce(self, node, src, ax, vars_, in_map, out_map, iters) -> None:
        """argmax/argmin: value and position accumulators, ties and NaN as codegen resolves them."""
        kind = node.op.reduce
        loc = self.loc_of(node)
        start = REDUCTIONS[kind].identity(src.dtype)
        vals = self.init_filled(node, lambda b: b.const(start, src.dtype), dtype=src.dtype, suffix="v")
        pos = self.init_filled(node, lambda b: b.const(0, int64), suffix="i")
        out = self.new_name()
        ty_v, ty_i = tensor_type(node.shape, src.dtype), tensor_type(node)
        mark = f", {self.backward_attr(node)}" if self.backward_attr(node) else ""
        self.lines.append(f"    {out}:2 = linalg.generic {{indexing_maps = [{in_map}, {out_map}, {out_map}], "
                          f"iterator_types = [{', '.join(_ITER[r] for r in iters)}]{mark}}} "
                          f"ins({self.tensor(src)} : {tensor_type(src)}) "
                          f"outs({vals}, {pos} : {ty_v}, {ty_i}) {{")
        t = mlir_type(src.dtype)
        self.lines.append(f"    ^bb0(%a0: {t}, %best: {t}, %at: i64):")
        b = ScalarBuilder(self.lines, "      ", "t", loc, self.module.decls)
        reduced = [v for k, v in enumerate(vars_) if k in ax]
        flat = None
        for k, v in enumerate(vars_):
            if k not in ax or v.extent == 1:
                continue
            i = b.op(f"linalg.index {k} : index")
            stride = 1
            for w in reduced[reduced.index(v) + 1:]:
                stride *= w.extent
            term = i if stride == 1 else b.op(f"arith.muli {i}, {b.index_const(stride)} : index")
            flat = term if flat is None else b.op(f"arith.addi {flat}, {term} : index")
        where = b.op(f"arith.index_cast {flat} : index to i64") if flat else b.const(0, int64)
        better = REDUCTIONS[kind].better(b, "%a0", "%best", src.dtype)
        value = b.select(better, "%a0", "%best", src.dtype)
        position_ = b.select(better, where, "%at", int64)
        self.lines.append(f"      linalg.yield {value}, {position_} : {t}, i64{loc}")
        self.lines.append(f"    }} -> ({ty_v}, {ty_i}){loc}")
        self.names[node.id] = f"{out}#1"

    def matmul(self, node: Node) -> None:
        a, b_ = node.srcs
        loc = self.loc_of(node)
        if node.dtype is bool_:
            self._bool_matmul(node)
            return
        init = self.init_filled(node, lambda b: b.const(0, node.dtype))
        out = self.new_name()
        ty = tensor_type(node)
        op = "linalg.batch_matmul" if len(node.shape) == 3 else "linalg.matmul"
        mark = f" {{{self.backward_attr(node)}}}" if self.backward_attr(node) else ""
        self.lines.append(f"    {out} = {op}{mark} ins({self.tensor(a)}, {self.tensor(b_)} : "
                          f"{tensor_type(a)}, {tensor_type(b_)}) outs({init} : {ty}) -> {ty}{loc}")
        self.names[node.id] = out

    def _bool_matmul(self, node: Node) -> None:
        a, b_ = node.srcs
        batch = len(node.shape) == 3
        n = len(node.shape) + 1
        lead = ["d0"] if batch else []
        i, j, k = (f"d{len(lead)}", f"d{len(lead) + 1}", f"d{len(lead) + 2}")
        maps = [self.module.map(n, lead + [i, k]), self.module.map(n, lead + [k, j])]
        init = self.init_filled(node, lambda b: b.const(False, bool_))
        self.generic(node, [(self.tensor(a), tensor_type(a)), (self.tensor(b_), tensor_type(b_))], maps,
                     [False] * (n - 1) + [True], lambda b, block: b.fma(block[0], block[1], "%out", bool_),
                     self.module.map(n, lead + [i, j]), init)

    def iota(self, node: Node) -> None:
        dim = node.attrs["dim"]

        def body(b: ScalarBuilder, block: list) -> str:
            if node.shape[dim] == 1:
                return b.const(0, int64)
            return b.op(f"arith.index_cast {b.op(f'linalg.index {dim} : index')} : index to i64")

        self.generic(node, [], [], [False] * len(node.shape), body)

    def scan(self, node: Node) -> None:
        """A running reduction along `dim` as a generic with one more (reduction) loop:
        out[..i..] = combine of x[..r..] over r <= i (quadratic, but exact and plain linalg)."""
        src = node.srcs[0]
        d = node.attrs["dim"]
        rank = len(node.shape)
        kind = node.op.reduce
        if rank == 0:  # a running reduction of one element is that element
            self.generic(node, [(self.tensor(src), tensor_type(src))], [self.module.map(0, [])], [],
                         lambda b, block: b.convert(block[0], src.dtype, node.dtype))
            return
        in_map = self.module.map(rank + 1, [f"d{rank}" if k == d else f"d{k}" for k in range(rank)])
        out_map = self.module.map(rank + 1, [f"d{k}" for k in range(rank)])
        reduction = REDUCTIONS[kind]
        init = self.init_filled(node, lambda b: b.const(reduction.identity(node.dtype), node.dtype))

        def body(b: ScalarBuilder, block: list) -> str:
            r = b.op(f"linalg.index {rank} : index")
            i = b.op(f"linalg.index {d} : index")
            v = b.convert(block[0], src.dtype, node.dtype)
            before = b.op(f"arith.cmpi ule, {r}, {i} : index")
            v = b.select(before, v, b.const(reduction.identity(node.dtype), node.dtype), node.dtype)
            return reduction.combine(b, "%out", v, node.dtype)

        self.generic(node, [(self.tensor(src), tensor_type(src))], [in_map], [False] * rank + [True], body,
                     out_map, init)

    def scatter(self, node: Node) -> None:
        """Writes at run-time positions: the start value, then one `tensor.insert` per update,
        in order (repeated indices see each other's writes), in an scf.for nest over the updates."""
        from .schedule import _bshape, bcast_index

        a = node.attrs
        if node.op.name == "scatter_add":
            base, src, idx_srcs, accumulate = None, node.srcs[0], node.srcs[1:], True
        else:
            base, src, idx_srcs, accumulate = node.srcs[0], node.srcs[1], node.srcs[2:], a["accumulate"]
        start, count = a["start"], a["count"]
        bshape = _bshape(idx_srcs)
        space = node.shape[:start] + bshape + node.shape[start + count:]
        n = self.count
        ty = tensor_type(node)
        loc = self.loc_of(node)
        if base is None:
            value = self.init_filled(node, lambda b: b.const(0, node.dtype))
        else:
            value = self._converted(node, base, f"%b{n}", loc)
        out = self.new_name()
        vars_ = [Var(f"u{k}", e) for k, e in enumerate(space)]
        loops = [v for v in vars_ if v.extent != 1]
        b = ScalarBuilder(self.lines, "    ", f"t{n}_", loc, self.module.decls)
        at = {}
        for depth, v in enumerate(loops):
            iv, acc = f"%u{n}_{depth}", f"%acc{n}_{depth}"
            res = out if depth == 0 else f"%s{n}_{depth}"
            lo, hi, one = b.index_const(0), b.index_const(v.extent), b.index_const(1)
            self.lines.append(f"{b.indent}{res} = scf.for {iv} = {lo} to {hi} step {one} "
                              f"iter_args({acc} = {value}) -> ({ty}) {{")
            b.indent += "  "
            at[v], value = iv, acc
        uidx = tuple(Sym.var(v) for v in vars_)
        sidx = bcast_index(uidx, space, src.shape)
        if self.scalar_leaf(src):
            update = self.scalar(b, src, node.dtype)
        else:
            pos = [index_value(b, s_, at) for s_ in sidx]
            got = b.op(f"tensor.extract {self.tensor(src)}[{', '.join(pos)}] : {tensor_type(src)}")
            update = b.convert(got, src.dtype, node.dtype)
        nb = len(bshape)
        static = uidx[:start] + (Sym.of(0),) * count + uidx[start + nb:]
        where = [index_value(b, s_, at) for s_ in static]
        for j, t in enumerate(idx_srcs):
            tpos = [index_value(b, s_, at) for s_ in bcast_index(uidx[start:start + nb], bshape, t.shape)]
            i = b.convert(b.op(f"tensor.extract {self.tensor(t)}[{', '.join(tpos)}] : {tensor_type(t)}"),
                          t.dtype, int64)
            size = b.const(node.shape[start + j], int64)
            i = b.select(b.compare("<", i, b.const(0, int64), int64), b.binary("add", i, size, int64),
                         i, int64)
            where[start + j] = b.op(f"arith.index_cast {i} : i64 to index")
        if accumulate:
            old = b.op(f"tensor.extract {value}[{', '.join(where)}] : {ty}")
            update = OPS["add"].scalar(b, [old, update], node.dtype, {})
        inserted = b.op(f"tensor.insert {update} into {value}[{', '.join(where)}] : {ty}")
        if not loops:
            self.lines.append(f"    {out} = tensor.cast {inserted} : {ty} to {ty}{loc}")
        for depth in reversed(range(len(loops))):
            b.indent = b.indent[:-2]
            inner = inserted if depth == len(loops) - 1 else f"%s{n}_{depth + 1}"
            self.lines.append(f"{b.indent}  scf.yield {inner} : {ty}{loc}")
            self.lines.append(f"{b.indent}}}{loc}")
        self.names[node.id] = out

    def _converted(self, node: Node, src: Node, name: str, loc: str) -> str:
        """`src` (of node's shape) as a new tensor of node's dtype: the start value of a scatter."""
        ty = tensor_type(node)
        rank = len(node.shape)
        ident = self.module.map(rank, [f"d{k}" for k in range(rank)])
        par = ", ".join(['"parallel"'] * rank)
        self.lines.append(f"    {name}_e = tensor.empty() : {ty}{loc}")
        self.lines.append(f"    {name} = linalg.generic {{indexing_maps = [{ident}, {ident}], "
                          f"iterator_types = [{par}]}} ins({self.tensor(src)} : {tensor_type(src)}) "
                          f"outs({name}_e : {ty}) {{")
        self.lines.append(f"    ^bb0(%a0: {mlir_type(src.dtype)}, %out: {mlir_type(node.dtype)}):")
        b = ScalarBuilder(self.lines, "      ", "t", loc, self.module.decls)
        v = b.convert("%a0", src.dtype, node.dtype)
        self.lines.append(f"      linalg.yield {v} : {mlir_type(node.dtype)}{loc}")
        self.lines.append(f"    }} -> {ty}{loc}")
        return name

    def opaque(self, node: Node) -> None:
        """An op with no upstream form: a call of a private function named after it."""
        loc = self.loc_of(node)
        out = self.new_name()
        args = [self.tensor(s) for s in node.srcs]
        types = [tensor_type(s) for s in node.srcs]
        ty = tensor_type(node)
        sig = "_".join(t[7:-1].replace("x", "_") for t in types) or "void"
        symbol = f"llgrad.{node.op.name}.{sig}"
        self.module.decls[symbol] = f"func.func private @{symbol}({', '.join(types)}) -> {ty}"
        mark = f" {{{self.backward_attr(node)}}}" if self.backward_attr(node) else ""
        self.lines.append(f"    {out} = func.call @{symbol}({', '.join(args)}){mark} : "
                          f"({', '.join(types)}) -> {ty}{loc}")
        self.names[node.id] = out


def _map_fits(sidx: tuple, src_shape: tuple) -> bool:
    """Whether linalg accepts reading a source of `src_shape` through this indexing map: a result
    that is a bare loop dim must span the source's whole dim (else use tensor.extract)."""
    for s, n in zip(sidx, src_shape):
        if len(s.terms) == 1 and s.const == 0 and isinstance(s.terms[0][0], Var) and s.terms[0][1] == 1:
            if s.terms[0][0].extent != n:
                return False
    return True


# -- whole programs ------------------------------------------------------------------------

def _slots(results: list[Node]) -> tuple[list[Node], list[Node]]:
    from .signature import canonicalize

    _, inputs, params = canonicalize(results)
    return inputs, params


def leaf_args(inputs: list[Node], params: list[Node]) -> dict:
    """Arguments for the program's realized inputs (`%in<slot>`) and Python scalars (`%p<slot>`)."""
    args = {n.id: (f"%in{k}", tensor_type(n), (0, k)) for k, n in enumerate(inputs)}
    args.update({n.id: (f"%p{k}", param_type(n.dtype), (1, k)) for k, n in enumerate(params)})
    return args


def format_function_module(results: list[Node], name: str, inputs=None, params=None, title: str = "") -> str:
    """A module with one function computing `results` (the graph as recorded, or as simplified)."""
    if inputs is None or params is None:
        inputs, params = _slots(results)
    module = MlirModule()
    FunctionPrinter(module, name, results, leaf_args(inputs, params)).build()
    return module.text(title)


def format_graph(targets: list[Node], name: str = "graph") -> str:
    """The pending graph that computes `targets`, as an MLIR module."""
    return format_function_module(list(targets), name)


def is_backward(nodes: list[Node]) -> dict:
    """node id -> whether it belongs to the backward part: made by autodiff, or reads such a value."""
    part: dict[int, bool] = {}
    for n in nodes:
        if n.buffer is not None or not n.srcs:
            part[n.id] = False
        else:
            part[n.id] = n.backward or any(part.get(s.id, False) for s in n.srcs)
    return part


def format_split(results: list[Node], inputs=None, params=None, titles: tuple = ("", "")) -> tuple:
    """(forward module, backward module) of a program's graph; either is None when empty.

    The forward function returns the forward values the program outputs and those the
    backward part reads; the backward function takes the latter as `%fwd<n>` arguments,
    named after the forward function's `%<n>`.
    """
    if inputs is None or params is None:
        inputs, params = _slots(results)
    order = topo_order(results)
    part = is_backward(order)
    args = leaf_args(inputs, params)
    computed = [n for n in order if n.buffer is None and n.srcs]
    fwd_nodes = [n for n in computed if not part[n.id]]
    bwd_nodes = [n for n in computed if part[n.id]]
    fwd_text = bwd_text = None
    names: dict = {}
    boundary: list[Node] = []
    if fwd_nodes:
        seen: set = set()
        for n in bwd_nodes:
            for s in n.srcs:
                if s.id not in seen and s.buffer is None and s.srcs and not part[s.id]:
                    seen.add(s.id)
                    boundary.append(s)
        fwd_results = [r for r in dict.fromkeys(results) if r.buffer is None and r.srcs and not part[r.id]]
        fwd_results += [b for b in boundary if b not in fwd_results]
        module = MlirModule()
        names = FunctionPrinter(module, "forward", fwd_results, args).build()
        fwd_text = module.text(titles[0])
    if bwd_nodes:
        bargs = dict(args)
        for k, n in enumerate(boundary):
            fwd_name = names.get(n.id, f"%{k}").split("#")[0]
            bargs[n.id] = (f"%fwd{fwd_name[1:]}", tensor_type(n), (2, k))
        bwd_results = [r for r in dict.fromkeys(results) if r.buffer is None and r.srcs and part[r.id]]
        module = MlirModule()
        FunctionPrinter(module, "backward", bwd_results, bargs).build()
        bwd_text = module.text(titles[1])
    return fwd_text, bwd_text

"""Run one fuzz graph through every oracle and compare.

- llgrad: every step's shape and dtype against the reference (and PyTorch), every
  compared output's elements against the reference within its error bound;
- gradients (backward from the last value with a fixed random output gradient):
  against PyTorch (float64 and the graph's own dtypes) and against central finite
  differences of the float64 reference, component by component where the function is
  smooth enough for differences to mean anything.

Float32 gradients are judged against float64 ones, allowing what PyTorch's own
float32 run deviates by (its error is the yardstick of the conditioning).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter

import llgrad
import numpy as np
from llgrad.autograd import template
from llgrad.runtime import executor

from .graph import Graph, Leaf, Step
from .ops import OPS, evaluate
from .reference import RV, Ctx, is_float, leaf

STATS: Counter = Counter()  # what the checks compared and skipped, across graphs
FD_MAX_ELEMENTS = 256  # finite differences evaluate the graph twice per input element
SUBNORMAL = {"float32": 2.0**-148, "float64": 2.0**-1073}  # results may differ by a denormal step

try:
    import torch
except ImportError:  # the reference and finite differences still judge llgrad
    torch = None


class Mismatch(AssertionError):
    pass


# -- evaluation ----------------------------------------------------------------------------


def reference(graph: Graph, ctx: Ctx, overrides: dict | None = None) -> list[RV]:
    values: list[RV] = []
    roots: list[int] = []
    with warnings.catch_warnings():  # NumPy warns about the mean of empty slices (NaN, as intended)
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, node in enumerate(graph.nodes):
            if isinstance(node, Leaf):
                data = overrides.get(i, node.data) if overrides else node.data
                values.append(leaf(np.asarray(data), ctx.track))
                roots.append(i)
            else:
                evaluate(node, values, roots, ctx)
    return values


def execute(graph: Graph, lib) -> list:
    """The graph's tensors under `lib` (llgrad or torch): each step is its printed expression."""
    env: dict = {}
    out = []
    for i, node in enumerate(graph.nodes):
        if isinstance(node, Leaf):
            t = lib.tensor(node.data, requires_grad=node.grad)
        else:
            try:
                with warnings.catch_warnings():  # PyTorch warns about var() without degrees of freedom
                    warnings.simplefilter("ignore", UserWarning)
                    if OPS[node.op].statement:  # x[k] = v: the step's value is x
                        exec(graph.expression(i), {"torch": lib}, env)  # noqa: S102 (generated code)
                        t = env[graph.arg_source(node.args[0])]
                    else:
                        t = eval(graph.expression(i), {"torch": lib}, env)  # noqa: S307 (generated code)
            except Exception as e:
                error = Mismatch(
                    f"{lib.__name__} raised at {graph.name(i)} = {graph.expression(i)}: "
                    f"{type(e).__name__}: {e}\n{graph.source()}"
                )
                error.step, error.raised = i, e
                raise error from e
        env[graph.name(i)] = t
        out.append(t)
    return out


def _execute_both(graph: Graph) -> tuple:
    """(llgrad's tensors, PyTorch's or None), or None when both refused the same op with the
    same exception type (PyTorch's refusals are part of the behaviour to match)."""
    theirs = refused = None
    if torch is not None:
        try:
            theirs = execute(graph, torch)
        except Mismatch as e:
            refused = e
    try:
        mine = execute(graph, llgrad)
    except Mismatch as e:
        if refused is not None and refused.step == e.step and type(refused.raised) is type(e.raised):
            STATS["op_errors_agreed"] += 1
            return None
        raise
    if refused is not None:
        raise refused
    return mine, theirs


def with_float(graph: Graph, dtype: str) -> Graph:
    """The same program with every floating dtype replaced by `dtype`."""
    cast = {"float32": "float", "float64": "double"}
    nodes = []
    for node in graph.nodes:
        if isinstance(node, Leaf):
            data = node.data.astype(dtype) if node.data.dtype.kind == "f" else node.data
            nodes.append(Leaf(data, node.grad))
        elif node.op in cast.values():
            nodes.append(Step(cast[dtype], node.args, node.attrs))
        else:
            nodes.append(node)
    return dataclasses.replace(graph, nodes=nodes)


def has_float32(graph: Graph) -> bool:
    return any(
        isinstance(n, Leaf) and n.data.dtype == np.float32 or isinstance(n, Step) and n.op == "float"
        for n in graph.nodes
    )


# -- comparisons --------------------------------------------------------------------------------


def compare_values(what: str, got: np.ndarray, ref: RV, graph: Graph, factor: float = 2.0) -> None:
    expect = ref.value
    if got.shape != expect.shape:
        raise Mismatch(f"{what}: shape {got.shape}, expected {expect.shape}\n{graph.source()}")
    err = np.broadcast_to(ref.err, expect.shape)
    checked = np.isfinite(err)
    STATS["elements_compared"] += int(checked.sum())
    STATS["elements_undecidable"] += int((~checked).sum())
    g = got.astype(np.float64) if got.dtype != bool else got
    e = expect.astype(np.float64) if expect.dtype != bool else expect
    if got.dtype == bool or expect.dtype == bool:
        bad = checked & (g != e)
    else:
        with np.errstate(all="ignore"):
            same = (g == e) | (np.isnan(g) & np.isnan(e))
            close = np.abs(g - e) <= factor * err + SUBNORMAL.get(ref.dtype, 0.0)
        bad = checked & ~same & ~close
    if np.any(bad):
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Mismatch(
            f"{what}: {int(bad.sum())} of {bad.size} elements differ; at {at}: llgrad "
            f"{got[at]!r}, reference {expect[at]!r} (error bound {err[at]:.3g})\n"
            f"llgrad:\n{got}\nreference:\n{expect}\n{graph.source()}"
        )


def _name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_step_meta(graph: Graph, tensors: list, refs: list[RV], lib_name: str) -> None:
    for i, (t, r) in enumerate(zip(tensors, refs)):
        if tuple(t.shape) != r.shape or _name(t.dtype) != r.dtype:
            raise Mismatch(
                f"{lib_name}: {graph.name(i)} = {graph.expression(i)} has shape {tuple(t.shape)} "
                f"and dtype {_name(t.dtype)}; expected {r.shape} {r.dtype}\n{graph.source()}"
            )


def check_autograd_meta(graph: Graph, mine: list, theirs: list) -> None:
    """requires_grad and the grad_fn node name of every step, as PyTorch has them."""
    for i, (a, b) in enumerate(zip(mine, theirs)):
        if a.requires_grad != b.requires_grad:
            raise Mismatch(
                f"{graph.name(i)}.requires_grad: llgrad {a.requires_grad}, torch {b.requires_grad}\n"
                f"{graph.source()}"
            )
        na, nb = (type(t.grad_fn).__name__ if t.grad_fn is not None else None for t in (a, b))
        node = graph.nodes[i]
        if isinstance(node, Step) and node.op == "matmul" and None not in (na, nb):
            continue  # known difference: PyTorch names `@`'s result after its internal path (Clone...)
        if isinstance(node, Step) and node.op == "reshape" and _layouts_differ(node, mine, theirs):
            STATS["reshape_names_skipped_for_layout"] += 1
            continue
        if na != nb:
            raise Mismatch(f"{graph.name(i)}.grad_fn: llgrad {na}, torch {nb}\n{graph.source()}")


def _layouts_differ(node: Step, mine: list, theirs: list) -> bool:
    """PyTorch's elementwise results keep a permuted input's memory layout, llgrad's are always
    contiguous (a known difference): then reshape views in one and copies in the other."""
    i = node.args[0].index
    return mine[i].is_contiguous() != theirs[i].is_contiguous()


# -- gradients --------------------------------------------------------------------------------


def output_weights(graph: Graph, shape: tuple, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(graph.weight_seed)
    return rng.uniform(0.5, 1.5, size=shape).astype(dtype)


def backward(graph: Graph, lib, tensors: list) -> dict:
    """{leaf position: gradient or None} after backward from the last value."""
    loss = tensors[graph.loss]
    w = output_weights(graph, tuple(loss.shape), _name(loss.dtype))
    loss.backward(lib.tensor(w))
    grads = {}
    for i, node in enumerate(graph.nodes):
        if isinstance(node, Leaf) and node.grad:
            g = tensors[i].grad
            grads[i] = None if g is None else g.detach().numpy().astype(np.float64)
    return grads


def wants_gradients(graph: Graph, refs: list[RV]) -> bool:
    loss = refs[graph.loss]
    return is_float(loss.dtype) and any(isinstance(n, Leaf) and n.grad for n in graph.nodes)


def finite_differences(graph: Graph, weights: np.ndarray) -> dict:
    """{leaf: (gradient, reliable mask)} of sum(w * out) by central differences in float64.

    A component is reliable where the one-sided differences agree: elsewhere the function
    has a kink, a jump or a singularity within the step.
    """
    g64 = with_float(graph, "float64")
    ctx = Ctx(track=False)
    w = weights.astype(np.float64)

    def loss(overrides):
        out = reference(g64, ctx, overrides)[graph.loss].value
        with np.errstate(all="ignore"):
            return float(np.sum(w * out))

    base_leaves = {i: n.data for i, n in enumerate(g64.nodes) if isinstance(n, Leaf)}
    centre = loss({})
    result = {}
    for i, node in enumerate(g64.nodes):
        if not (isinstance(node, Leaf) and node.grad):
            continue
        x = base_leaves[i]
        grad = np.zeros(x.shape)
        ok = np.zeros(x.shape, bool)
        for idx in np.ndindex(*x.shape):
            h = 1e-6 * max(1.0, abs(float(x[idx]))) if np.isfinite(x[idx]) else 0.0
            if h == 0.0:
                continue
            vals = []
            for s in (1, -1):
                moved = x.copy()
                moved[idx] += s * h
                vals.append(loss({i: moved}))
            plus, minus = vals
            forward, backward_ = (plus - centre) / h, (centre - minus) / h
            grad[idx] = (plus - minus) / (2 * h)
            scale = 1.0 + abs(grad[idx])
            ok[idx] = bool(
                np.isfinite(plus)
                and np.isfinite(minus)
                and np.isfinite(centre)
                and abs(forward - backward_) <= 1e-4 * scale
            )
        result[i] = (grad, ok)
    return result


def compare_grads(
    what: str, got: dict, ref: dict, noise: dict | None, float32: bool, graph: Graph, mask: dict | None = None
) -> None:
    rtol, atol = (1e-4, 1e-5) if float32 else (1e-8, 1e-10)
    finite = [np.abs(r[np.isfinite(r)]) for r in ref.values() if r is not None]
    scale = max([float(f.max()) for f in finite if f.size] + [1.0])
    # Sums over many elements cancel differently in another summation order: an absolute
    # slack that grows like the square root of the largest value's size.
    scale *= max(1.0, np.sqrt(max(n.data.size for n in graph.nodes if isinstance(n, Leaf)) / 64))
    for i, r in ref.items():
        g = got.get(i)
        if (g is None) != (r is None):
            raise Mismatch(
                f"{what}: .grad of {graph.name(i)} is {'None' if g is None else 'set'} in llgrad, "
                f"{'None' if r is None else 'set'} in the reference\n{graph.source()}"
            )
        if g is None:
            continue
        tol = rtol * np.abs(r) + atol * scale
        if noise is not None:
            with np.errstate(all="ignore"):
                tol = tol + 8 * np.nan_to_num(noise[i], nan=np.inf)
        checked = np.ones(r.shape, bool) if mask is None else mask[i]
        checked = checked & ~np.isposinf(tol)  # the yardstick says: not decidable in this precision
        with np.errstate(all="ignore"):
            same = (g == r) | (np.isnan(g) & np.isnan(r))
            bad = checked & ~same & ~(np.abs(g - r) <= tol)
        STATS[f"grad_elements_{what.split()[0]}"] += int(checked.sum())
        if np.any(bad):
            at = tuple(int(k) for k in np.argwhere(bad)[0])
            raise Mismatch(
                f"{what}: gradient of {graph.name(i)} differs at {at}: llgrad {g[at]!r}, reference "
                f"{r[at]!r} (tolerance {tol[at]:.3g})\nllgrad:\n{g}\nreference:\n{r}\n{graph.source()}"
            )


# -- the whole check ------------------------------------------------------------------------------


def check(graph: Graph, fd: bool = True) -> None:
    STATS["graphs"] += 1
    ctx = Ctx(track=True)
    refs = reference(graph, ctx)
    both = _execute_both(graph)
    if both is None:
        return
    mine, theirs = both
    check_step_meta(graph, mine, refs, "llgrad")
    if torch is not None:
        check_step_meta(graph, theirs, refs, "torch (the fuzzer's own reference is wrong)")
        check_autograd_meta(graph, mine, theirs)
    grad = wants_gradients(graph, refs) and mine[graph.loss].requires_grad
    t_same, t_error = None, None
    judge = torch  # PyTorch, when it can compute the gradients
    if grad and torch is not None:
        try:
            t_same = backward(graph, torch, theirs)
        except RuntimeError as e:
            if "inplace operation" in str(e):  # a value saved for backward was overwritten in place
                t_error = e
            else:  # PyTorch's own backward failed (clamp with bounds of a larger shape, say)
                STATS["pytorch_backward_failed"] += 1
                judge = None
    keep = {graph.loss, *graph.outputs} | {i for i, n in enumerate(graph.nodes) if isinstance(n, Leaf)}
    mine = [t if i in keep else None for i, t in enumerate(mine)]  # dropped intermediates are not live
    got_grads, my_error = _backward_or_error(graph, mine) if grad and graph.backward_first else (None, None)
    for i in graph.outputs:
        compare_values(f"value of {graph.name(i)}", mine[i].detach().numpy(), refs[i], graph)
    if grad and not graph.backward_first:
        got_grads, my_error = _backward_or_error(graph, mine)
    if grad and my_error is None:
        check_replay(graph, keep)
    if torch is not None:
        for i in graph.outputs:
            compare_values(
                f"torch's value of {graph.name(i)} (the fuzzer's reference is wrong)",
                theirs[i].detach().numpy(),
                refs[i],
                graph,
                factor=8.0,
            )
    if not grad or _same_backward_error(graph, my_error, t_error):
        return
    STATS["graphs_with_gradients"] += 1
    float32 = has_float32(graph)
    if ctx.ambiguous:  # a kink, tie or comparison too close to call in this precision
        STATS["gradients_undecidable"] += 1
        return
    loss = refs[graph.loss]
    weights = output_weights(graph, loss.shape, loss.dtype)
    if judge is not None:
        t64 = _torch_gradients(with_float(graph, "float64"))
        if t64 is None:
            return
        if float32:
            noise = {i: None if t_same[i] is None else np.abs(t_same[i] - t64[i]) for i in t64}
        else:
            t32 = _torch_gradients(with_float(graph, "float32"))
            if t32 is None:
                return
            noise = {i: None if t32[i] is None else np.abs(t32[i] - t64[i]) * 2.0**-29 for i in t64}
        compare_grads("torch gradients", got_grads, t64, noise, float32, graph)
    if (
        fd
        and sum(n.data.size for n in graph.nodes if isinstance(n, Leaf) and n.grad) <= FD_MAX_ELEMENTS
        and not any(rv.dtype == "float32" for rv in reference(with_float(graph, "float64"), Ctx(track=False)))
    ):  # (an int / int stays float32 in the float64 graph: steps of 1e-6 would round away)
        check_finite_differences(
            graph,
            got_grads,
            weights,
            noise if judge is not None else None,
            float32,
            t64 if judge is not None else None,
        )
        if judge is None and float32:
            _check_float64_variant(graph)


def _check_float64_variant(graph: Graph) -> None:
    """Without PyTorch, nothing measures a float32 graph's conditioning, so its gradients are held
    to a loose bound only; the same graph in float64 holds llgrad's backward formulas to a tight
    one against finite differences."""
    g64 = with_float(graph, "float64")
    try:
        tensors = execute(g64, llgrad)
        got = backward(g64, llgrad, tensors)
    except (Mismatch, RuntimeError):
        STATS["gradients_without_a_float64_variant"] += 1
        return
    loss = tensors[graph.loss]
    check_finite_differences(g64, got, output_weights(g64, tuple(loss.shape), "float64"), None, False, None)


def check_replay(graph: Graph, keep: set) -> None:
    """Run the program twice more: the first backward runs the engine and records its template
    (frontend/autograd/template.py), the second replays it. The replay must build the very graph
    the engine built (nothing compiles for it) and give bit-identical gradients."""
    template._templates.clear()
    runs = []
    for _ in range(2):
        compiles = executor.stats()["compiles"]
        tensors = execute(graph, llgrad)
        tensors = [t if i in keep else None for i, t in enumerate(tensors)]
        if not graph.backward_first:
            for i in graph.outputs:
                tensors[i].detach().numpy()
        grads = backward(graph, llgrad, tensors)
        runs.append((grads, executor.stats()["compiles"] - compiles))
    (first, _), (second, compiled) = runs
    if compiled:
        raise Mismatch(f"the replayed backward made another graph than the engine's\n{graph.source()}")
    for i, g in first.items():
        again = second[i]
        if (g is None) != (again is None) or (g is not None and not np.array_equal(g, again, equal_nan=True)):
            raise Mismatch(f"the replayed backward gave another gradient of {graph.name(i)}\n"
                           f"{graph.source()}")


def _torch_gradients(variant: Graph) -> dict | None:
    """PyTorch's gradients of the graph with its float dtypes changed, or None where the change
    makes a program PyTorch refuses (x32[i] = y stays float32 while y becomes float64...)."""
    try:
        return backward(variant, torch, execute(variant, torch))
    except (Mismatch, RuntimeError):
        STATS["gradients_without_a_float64_variant"] += 1
        return None


def _backward_or_error(graph: Graph, tensors: list) -> tuple:
    try:
        return backward(graph, llgrad, tensors), None
    except RuntimeError as e:
        return None, e


def _same_backward_error(graph: Graph, mine: Exception | None, theirs: Exception | None) -> bool:
    """Both refused to backward (an overwritten saved value), or raise Mismatch; False if neither did."""
    if mine is None and theirs is None:
        return False
    if torch is None and "modified by an inplace operation" in str(mine):
        theirs = mine  # without PyTorch, the one error an in-place graph may legitimately raise
    if mine is None or theirs is None:
        raise Mismatch(
            f"backward: llgrad {'computed gradients' if mine is None else f'raised {mine!r}'}, "
            f"PyTorch {'computed gradients' if theirs is None else f'raised {theirs!r}'}\n"
            f"{graph.source()}"
        )
    STATS["backward_errors_agreed"] += 1
    return True


def check_finite_differences(
    graph: Graph, got: dict, weights: np.ndarray, noise: dict | None, float32: bool, exact: dict | None
) -> None:
    """exact: PyTorch's float64 gradients, where known (llgrad was compared with them already).
    Differences cannot see a NaN or infinite gradient (0 * inf in a backward formula), nor
    PyTorch's conventions at ties (clamp with min == max): components where PyTorch itself
    disagrees with the differences are skipped."""
    ref, mask, slack = {}, {}, {}
    for i, (g, ok) in finite_differences(graph, weights).items():
        if exact is not None and exact.get(i) is not None:
            with np.errstate(all="ignore"):
                agree = np.abs(exact[i] - g) <= 1e-4 * (1 + np.abs(g)) + 1e-6 * (1 + np.abs(g).max(initial=0))
            ok = ok & np.isfinite(exact[i]) & agree
        STATS["fd_components_skipped"] += int((~ok).sum())
        if got.get(i) is None:  # not reached by backward: its gradient must be zero
            if np.any(ok & (np.abs(g) > 1e-6)):
                raise Mismatch(
                    f".grad of {graph.name(i)} is None but finite differences give\n{g}\n{graph.source()}"
                )
            continue
        ref[i], mask[i] = g, ok
        if noise is not None and noise.get(i) is not None:
            yardstick = noise[i]
        else:  # no PyTorch to measure float32's conditioning by: a loose bound
            yardstick = 1e-2 * (1 + np.abs(g)) if float32 else 0.0
        slack[i] = yardstick + 1e-4 * (1 + np.abs(g)) / 8  # differences' own truncation and rounding error
    compare_grads("finite-difference gradients", {i: got[i] for i in ref}, ref, slack, float32, graph, mask)

"""Run notebook cells the way Jupyter does, with `torch` resolving to a chosen module.

Each cell's stdout, the repr of its last expression, its warnings and any
exception are recorded as text, so llgrad's transcript can be compared with
PyTorch's. Random draws are made identical on both sides by replacing
randn/rand with one NumPy stream (the two libraries' generators differ).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import re
import types
import warnings

import numpy as np

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _random_patch(lib, rng: np.random.Generator):
    def randn(*size, requires_grad=False, dtype=None, **kw):
        size = kw.get("size", size)
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        data = rng.standard_normal(size).astype(np.float32)
        return lib.tensor(data, requires_grad=requires_grad)

    return randn


def module_for(lib, rng):
    """A stand-in for `torch` whose randn draws from `rng`."""
    proxy = types.ModuleType(lib.__name__)
    proxy.__dict__.update({k: getattr(lib, k) for k in dir(lib) if not k.startswith("__")})
    proxy.randn = _random_patch(lib, rng)
    return proxy


def run_cells(cells: list[str], torch_module, autograd_module) -> list[str]:
    """The transcript of each cell."""
    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "torch":
            return torch_module
        if name == "torch.autograd":
            return autograd_module if fromlist else torch_module
        return real_import(name, globals, locals, fromlist, level)

    env_builtins = dict(builtins.__dict__, __import__=fake_import)
    namespace: dict = {"__builtins__": env_builtins, "__name__": "__notebook__"}
    transcript = []
    for cell in cells:
        out = io.StringIO()
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
            warnings.simplefilter("always")
            try:
                _exec_cell(cell, namespace)
            except Exception as e:  # noqa: BLE001 - the transcript records it
                print(f"!! {type(e).__name__}: {e}")
        text = out.getvalue()
        for w in caught:
            message = str(w.message).split(" (Triggered internally")[0]
            text += f"?? {w.category.__name__}: {message}\n"
        transcript.append(_ADDRESS.sub("0x?", text))
    return transcript


def _exec_cell(cell: str, namespace: dict) -> None:
    tree = ast.parse(cell)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        body = ast.Module(tree.body[:-1], type_ignores=[])
        exec(compile(body, "<cell>", "exec"), namespace)
        value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
        if value is not None:
            print(repr(value))
    else:
        exec(compile(tree, "<cell>", "exec"), namespace)


if __name__ == "__main__":
    import json
    import pathlib
    import sys

    if "--record" in sys.argv:
        import torch
        import torch.autograd
        from seed_cells import NOTEBOOKS

        golden = {name: run_cells(cells, module_for(torch, np.random.default_rng(1234)), torch.autograd)
                  for name, cells in NOTEBOOKS.items()}
        path = pathlib.Path(__file__).parent / "golden" / "seeds_torch.json"
        path.write_text(json.dumps(golden, indent=1))
        print(f"recorded {path}")

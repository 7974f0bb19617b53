"""llgrad.save / llgrad.load: tensors and (nested) state dicts in a NumPy .npz file, no pickle.

Each tensor is one array of the archive, named by its key path
("fc1.weight", "state/0/exp_avg"), so `np.load` reads a checkpoint too. The
structure around them (dicts, lists, tuples, numbers, strings, None) is one
JSON document stored as a unicode array. Loading uses
`np.load(allow_pickle=False)` and rebuilds only those plain types: a file
can hold data, never code, and anything else in it is an error.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
from llgrad.compiler import dtypes

from .tensor import Tensor

_META = "__llgrad__"
_FORMAT = 1


class _Writer:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def name(self, path: tuple) -> str:
        base = ".".join(str(p) for p in path) or "tensor"
        name, k = base, 1
        while name in self.arrays or name == _META:
            name, k = f"{base}#{k}", k + 1
        return name

    def encode(self, obj, path: tuple):
        if isinstance(obj, Tensor):
            name = self.name(path)
            self.arrays[name] = np.array(obj.detach()._realize())  # (ascontiguousarray makes 0-d 1-d)
            return {"tensor": name, "requires_grad": bool(obj.requires_grad)}
        if obj is None or isinstance(obj, (bool, str)):
            return {"value": obj}
        if isinstance(obj, int):
            return {"int": str(obj)}
        if isinstance(obj, float):
            return {"float": repr(obj)}  # repr keeps inf, nan and every bit
        if isinstance(obj, dtypes.DType):
            return {"dtype": obj.name}
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise TypeError(f"llgrad.save: dict keys must be str or int, got {type(key).__name__}")
                items.append([key, self.encode(value, path + (key,))])
            return {"dict": items}
        if isinstance(obj, (list, tuple)):
            kind = "list" if isinstance(obj, list) else "tuple"
            return {kind: [self.encode(v, path + (i,)) for i, v in enumerate(obj)]}
        raise TypeError(f"llgrad.save cannot store a {type(obj).__name__} (tensors, numbers, strings, None, "
                        "and dicts/lists/tuples of them only)")


def save(obj, f) -> None:
    """Write a tensor, or nested dicts/lists/tuples of tensors and plain values, to an .npz file."""
    writer = _Writer()
    meta = {"format": _FORMAT, "root": writer.encode(obj, ())}
    arrays = dict(writer.arrays)
    arrays[_META] = np.array(json.dumps(meta))
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:  # np.savez would append ".npz" to a path without it
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


class _Reader:
    def __init__(self, archive) -> None:
        self.archive = archive

    def decode(self, node):
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise ValueError(f"llgrad.load: malformed entry {node!r:.80}")
        if "tensor" in node:
            from .creation import from_array

            name = node["tensor"]
            if not isinstance(name, str) or name not in self.archive.files or name == _META:
                raise ValueError(f"llgrad.load: missing array {name!r}")
            array = self.archive[name]  # allow_pickle=False: object arrays raise here
            t = from_array(array)
            if node.get("requires_grad") is True:
                t.requires_grad_(True)
            return t
        (kind, value), = node.items()
        if kind == "value" and (value is None or isinstance(value, (bool, str))):
            return value
        if kind == "int" and isinstance(value, str):
            return int(value)
        if kind == "float" and isinstance(value, str):
            return _float(value)
        if kind == "dtype" and isinstance(value, str):
            return _dtype(value)
        if kind == "dict" and isinstance(value, list):
            out = {}
            for item in value:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))):
                    raise ValueError("llgrad.load: malformed dict entry")
                out[item[0]] = self.decode(item[1])
            return out
        if kind in ("list", "tuple") and isinstance(value, list):
            items = [self.decode(v) for v in value]
            return items if kind == "list" else tuple(items)
        raise ValueError(f"llgrad.load: unknown entry kind {kind!r}")


def _float(text: str) -> float:
    return float(text)  # parses digits, "inf" and "nan": nothing is evaluated


def _dtype(name: str) -> dtypes.DType:
    found = {"float32": dtypes.float32, "float64": dtypes.float64, "int64": dtypes.int64,
             "int32": dtypes.int32, "bool": dtypes.bool_}.get(name)
    if found is None:
        raise ValueError(f"llgrad.load: unknown dtype {name!r}")
    return found


def load(f, map_location=None, weights_only: bool = True):
    """Read what llgrad.save wrote. Never unpickles: object arrays and unknown entries raise ValueError."""
    try:
        archive = np.load(f, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError) as e:  # ValueError: a pickle (refused)
        raise ValueError(f"llgrad.load: not an llgrad .npz file ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError("llgrad.load: not an llgrad .npz file (a single .npy array)")
    with archive:
        if _META not in archive.files:
            raise ValueError("llgrad.load: not an llgrad file (no structure entry); use numpy.load for plain "
                             ".npz archives")
        meta_array = archive[_META]
        if meta_array.dtype.kind != "U" or meta_array.shape != ():
            raise ValueError("llgrad.load: malformed structure entry")
        meta = json.loads(str(meta_array))
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT or "root" not in meta:
            raise ValueError("llgrad.load: unsupported file format version")
        return _Reader(archive).decode(meta["root"])


__all__ = ["save", "load"]

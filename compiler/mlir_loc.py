"""Source locations of IR nodes: where in the user's script each op was written.

The frontend records `Node.loc` as `(code object, instruction offset)` of the
first frame outside llgrad (cheap on the hot path: no line lookup). This module
resolves it lazily, when something is printed, to (file, line, column) with
Python's own position table, and formats MLIR `loc(...)` attributes.
"""

from __future__ import annotations

import functools
import itertools
import linecache
import os

Position = tuple[str, int, int]  # file, 1-based line, 1-based column (0 when unknown)

_cache: dict = {}  # (code, offset) -> position: keeps code objects alive, so it is bounded
CACHE_MAX = 4096


def position(loc) -> Position | None:
    """(file, line, column) of a node's recorded location, or None."""
    if loc is None:
        return None
    got = _cache.get(loc)
    if got is None:
        if len(_cache) >= CACHE_MAX:  # code made at run time (exec, lambdas) would pile up
            _cache.clear()
        got = _cache[loc] = _resolve(*loc)
    return got


def _resolve(code, offset: int) -> Position | None:
    line, col = None, 0
    positions = getattr(code, "co_positions", None)
    if positions is not None:  # Python 3.11+: one entry per 2-byte code unit
        entry = next(itertools.islice(positions(), offset // 2, None), None)
        if entry is not None:
            line, col = entry[0], (entry[2] + 1 if entry[2] is not None else 0)
    if line is None:
        for start, end, lineno in code.co_lines():
            if start <= offset < end and lineno is not None:
                line = lineno
                break
    if line is None:
        return None
    return code.co_filename, line, col


def display_path(filename: str) -> str:
    """The file as a reader would name it: relative to the working directory when inside it."""
    if not os.path.isabs(filename):
        return filename
    return _relative(filename, os.getcwd())


@functools.lru_cache(maxsize=1024)
def _relative(filename: str, cwd: str) -> str:
    try:
        rel = os.path.relpath(filename, cwd)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def mlir_loc(pos: Position) -> str:
    """MLIR's file-line-column location attribute."""
    path = display_path(pos[0]).replace("\\", "\\\\").replace('"', '\\"')
    return f'loc("{path}":{pos[1]}:{pos[2]})'


def source_text(pos: Position) -> str:
    """The source line at `pos`, stripped ("" when the file is not readable)."""
    return linecache.getline(pos[0], pos[1]).strip()


def comment(pos: Position) -> str:
    """`file.py:12  y = x + 2`, for a comment line before the ops one source line made."""
    text = source_text(pos)
    where = f"{display_path(pos[0])}:{pos[1]}"
    return f"{where}  {text}" if text else where


class LocTable:
    """Location aliases of one MLIR module (`#loc3 = loc("t.py":3:5)`), printed at its end."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}

    def ref(self, pos: Position | None) -> str:
        """The trailing ` loc(#locN)` for an op (or "" when the position is unknown)."""
        if pos is None:
            return ""
        text = mlir_loc(pos)
        alias = self.aliases.get(text)
        if alias is None:  # named after the line, so a reader needs no lookup: loc(#loc12)
            alias, taken, n = f"#loc{pos[1]}", set(self.aliases.values()), 1
            while alias in taken:
                alias, n = f"#loc{pos[1]}_{n}", n + 1
            self.aliases[text] = alias
        return f" loc({alias})"

    def definitions(self) -> list[str]:
        return [f"{alias} = {text}" for text, alias in self.aliases.items()]

"""The disk cache of compiled programs, from the command line.

    python -m llgrad.cache info     # where it is, whether it is used, entries and size
    python -m llgrad.cache clear    # remove every entry

LLGRAD_CACHE_DIR moves the cache, LLGRAD_CACHE=0 turns it off, LLGRAD_CACHE_MAX_MB
bounds it (least recently used entries go first).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from llgrad.runtime import diskcache


def _cache() -> tuple[diskcache.DiskCache, diskcache.Settings]:
    s = diskcache.settings()
    return diskcache.DiskCache(s.root, s.max_bytes), s


def info() -> dict:
    """Where the disk cache is, whether llgrad uses it, and what it holds."""
    cache, s = _cache()
    with warnings.catch_warnings():  # a refused directory is reported below, not warned about
        warnings.simplefilter("ignore", diskcache.CacheWarning)
        out = cache.info()
    out["enabled"] = s.enabled and (out["usable"] or not out["exists"])
    if not s.enabled:
        out["disabled_because"] = s.reason
    elif not out["exists"]:
        if _creatable(cache.root):
            out["note"] = "made at the first compile"
        else:
            out["enabled"] = False
            out["disabled_because"] = "the directory cannot be created"
    elif not out["usable"]:
        out["disabled_because"] = out["refused_because"] or "the directory cannot be created or read"
    ctx = diskcache.context()
    out["key"] = {k: ctx[k] for k in ("llgrad", "llvmlite", "llvm", "cpu", "triple")}
    return out


def _creatable(path: Path) -> bool:
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)


def clear() -> int:
    """Remove every entry of the disk cache; return how many were removed."""
    cache, _ = _cache()
    return cache.clear()


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llgrad.cache", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["info", "clear"])
    args = parser.parse_args(argv)
    if args.command == "clear":
        n = clear()
        print(f"removed {n} entries from {diskcache.settings().root}")
        return 0
    i = info()
    state = "on" if i["enabled"] else f"off ({i['disabled_because']})"
    if i.get("note"):
        state += f" ({i['note']})"
    key = i["key"]
    print(f"directory: {i['directory']}")
    print(f"state:     {state}")
    print(f"entries:   {i['entries']} ({_mb(i['bytes'])} of at most {_mb(i['max_bytes'])})")
    print(f"keyed on:  llgrad {key['llgrad']}, its sources, llvmlite {key['llvmlite']}, "
          f"LLVM {key['llvm']}, {key['triple']}, cpu {key['cpu']} and its features")
    return 0


if __name__ == "__main__":
    sys.exit(main())

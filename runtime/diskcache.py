"""The disk cache of compiled programs: object code and plan, one file per program.

Where: $LLGRAD_CACHE_DIR, else $XDG_CACHE_HOME/llgrad, else ~/.cache/llgrad.
LLGRAD_CACHE=0 turns it off; LLGRAD_CACHE_MAX_MB bounds its size (default 512),
least recently used entries going first.

An entry is native code that gets loaded into the process, so the cache is
treated like code: its directory is created 0700, and a directory or entry
that is not the user's own, or that other users can write, is refused. Each
entry carries its full key and a SHA-256 of its bytes; a corrupt, truncated
or foreign entry is discarded with a warning and the program is recompiled.
A read-only or missing directory quietly means compiling without the cache.
Writes go to a temporary file renamed into place, so readers, and processes
writing the same entry at once, only ever see whole entries. Nothing read
from disk is executed but the object code itself: the header is JSON.

Entry layout: MAGIC | u32 header length | header JSON {context, key, plan} |
object code | SHA-256 of everything before it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import llvmlite
import numpy as np
from llgrad.compiler.dtypes import DType

from . import config
from .jit import PIPELINE, jit, llvm_version
from .plan import Plan

MAGIC = b"LLGRAD-PROGRAM\x00\x01"
SUFFIX = ".llgc"
DEFAULT_MAX_MB = 512
MAX_ENTRY_BYTES = 256 << 20  # larger files are not read, whatever they claim to be
_DIGEST = 32
_ENTRY_NAME = re.compile(r"^[0-9a-f]{64}\.llgc$")
_TEMP_NAME = re.compile(r"^\.tmp-.*\.llgc$")
_STALE_TEMP_SECONDS = 3600  # a temp file this old was left by a writer that died


class CacheWarning(RuntimeWarning):
    """A disk cache entry or directory was refused or discarded (llgrad recompiled)."""


@dataclass(frozen=True)
class Settings:
    root: Path
    enabled: bool
    max_bytes: int
    reason: str = ""  # why it is off


def settings() -> Settings:
    """The disk cache settings the environment asks for now."""
    chosen = config.get("LLGRAD_CACHE_DIR")
    if chosen:
        root = Path(chosen).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: relative is invalid
        root = base / "llgrad"
    max_bytes = int(config.get("LLGRAD_CACHE_MAX_MB") * (1 << 20))
    off = not config.get("LLGRAD_CACHE")
    return Settings(root, not off, max_bytes, "LLGRAD_CACHE=0" if off else "")


_caches: dict = {}
_caches_lock = threading.Lock()


def _unlock_after_fork() -> None:
    """In a forked child: a thread of the parent that held one of these locks is gone."""
    _caches_lock._at_fork_reinit()
    for cache in _caches.values():
        cache._lock._at_fork_reinit()


os.register_at_fork(after_in_child=_unlock_after_fork)


def current() -> DiskCache | None:
    """The disk cache to use now, or None when it is turned off."""
    s = settings()
    if not s.enabled:
        return None
    with _caches_lock:
        cache = _caches.get(s)
        if cache is None:
            cache = _caches[s] = DiskCache(s.root, s.max_bytes)
    return cache


# -- keys -----------------------------------------------------------------------------

def key_text(key) -> str | None:
    """An exact text form of a canonical graph key, or None if it holds a value with none.

    Types are tagged, so values that compare equal in Python (1, 1.0, True) stay apart.
    """
    out: list[str] = []
    try:
        _encode(key, out)
    except TypeError:
        return None
    return "".join(out)


def _encode(x, out: list) -> None:
    if isinstance(x, tuple | list):
        out.append("(" if isinstance(x, tuple) else "[")
        for item in x:
            _encode(item, out)
            out.append(",")
        out.append(")" if isinstance(x, tuple) else "]")
    elif isinstance(x, str):
        out.append(json.dumps(x))
    elif isinstance(x, bool):
        out.append("T" if x else "F")
    elif isinstance(x, int):
        out.append(f"i{x}")
    elif isinstance(x, float):
        out.append(f"f{x.hex()}")
    elif x is None:
        out.append("N")
    elif isinstance(x, DType):
        out.append(f"d{x.name}")
    elif isinstance(x, np.generic) and x.dtype.kind in "biuf":
        out.append(f"n{x.dtype.str}:")
        _encode(x.item(), out)
    else:
        raise TypeError(f"no exact text for {type(x).__name__}")


_context: dict | None = None


def context() -> dict:
    """What besides the graph decides the object code: versions, sources, target CPU."""
    global _context
    if _context is None:
        engine = jit()
        frontend = sys.modules.get("llgrad")
        _context = {
            "format": 1,
            "llgrad": getattr(frontend, "__version__", ""),
            "sources": _source_digest(),
            "llvmlite": llvmlite.__version__,
            "llvm": llvm_version(),
            "triple": engine.triple,
            "cpu": engine.cpu,
            "features": engine.features,
            "pipeline": PIPELINE,
        }
    return _context


def _source_digest() -> str:
    """SHA-256 of the compiler's and runtime's sources: a changed codegen misses the cache."""
    from llgrad import compiler

    h = hashlib.sha256()
    for folder in (Path(compiler.__file__).parent, Path(__file__).parent):
        for path in sorted(folder.rglob("*.py")):
            h.update(path.relative_to(folder).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


# -- entries --------------------------------------------------------------------------

class _Corrupt(Exception):
    pass


def _pack(header: dict, obj: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    body = MAGIC + struct.pack("<I", len(head)) + head + obj
    return body + hashlib.sha256(body).digest()


def _unpack(data: bytes) -> tuple[dict, bytes]:
    start = len(MAGIC) + 4
    if len(data) < start + _DIGEST or not data.startswith(MAGIC):
        raise _Corrupt("not an llgrad cache entry, or truncated")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise _Corrupt("checksum mismatch")
    (n,) = struct.unpack_from("<I", data, len(MAGIC))
    if start + n > len(body):
        raise _Corrupt("header length out of range")
    try:
        header = json.loads(body[start:start + n])
    except ValueError as e:
        raise _Corrupt(f"unreadable header: {e}") from None
    if not isinstance(header, dict):
        raise _Corrupt("unreadable header")
    return header, body[start + n:]


def _unsafe(st: os.stat_result, what: str) -> str | None:
    """Why a file or directory with this status must not be trusted, or None."""
    if st.st_uid != os.geteuid():
        return f"the {what} belongs to another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"the {what} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


class DiskCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._made = False
        self.refusal = ""  # why the directory is not used, when it is refused
        self._bytes: int | None = None  # estimate of the size on disk, after the first scan
        self._lock = threading.Lock()

    def path_of(self, key: str) -> Path:
        ctx = json.dumps(context(), sort_keys=True)
        return self.root / (hashlib.sha256(f"{ctx}\n{key}".encode()).hexdigest() + SUFFIX)

    def usable(self) -> bool:
        """Whether the directory exists (made 0700 if missing) and is the user's own alone.

        Checked on every use, not once: a directory opened up later is refused from then on.
        """
        try:
            if not self._made:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._made = True
            st = os.stat(self.root)
        except OSError:
            return False  # missing and cannot be made: compile without it, quietly
        problem = None if stat.S_ISDIR(st.st_mode) else "it is not a directory"
        problem = problem or _unsafe(st, "directory")
        if problem and problem != self.refusal:
            warnings.warn(f"llgrad: not using the disk cache {self.root}: {problem}; "
                          "compiling without it", CacheWarning, stacklevel=3)
        self.refusal = problem or ""
        return problem is None

    def get(self, key: str) -> tuple[Plan, bytes] | None:
        """The plan and object code stored for `key`, or None (a bad entry is discarded)."""
        if not self.usable():
            return None
        path = self.path_of(key)
        data = self._read(path)
        if data is None:
            return None
        try:
            header, obj = _unpack(data)
            if header.get("context") != context() or header.get("key") != key:
                raise _Corrupt("it was stored for another program or machine")
            plan = Plan.from_json(header.get("plan"))
        except (_Corrupt, ValueError) as e:
            self._discard(path, str(e))
            return None
        try:
            os.utime(path)  # recently used: evicted last
        except OSError:
            pass
        return plan, obj

    def _read(self, path: Path) -> bytes | None:
        """The bytes of the entry at `path`, or None: missing, refused (warned), unreadable.

        Only a regular file is read. Checked before opening (opening a FIFO would block, a
        directory cannot be read as a file), then opened non-blocking and checked again on
        what was opened, in case the entry was swapped in between.
        """
        try:
            st = os.lstat(path)
        except OSError:
            return None  # missing (or the directory went away): a miss
        if stat.S_ISLNK(st.st_mode):
            self._discard(path, "it is a symbolic link", remove=False)
            return None
        if not stat.S_ISREG(st.st_mode):
            self._discard(path, "not a regular file", remove=False)
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ELOOP:
                self._discard(path, "it is a symbolic link", remove=False)
            return None
        try:
            st = os.fstat(fd)  # of the file opened: no swapping it after the check
            problem = None if stat.S_ISREG(st.st_mode) else "not a regular file"
            problem = problem or _unsafe(st, "entry")
            if problem is None and st.st_size > MAX_ENTRY_BYTES:
                problem = "too large"
            if problem:
                self._discard(path, problem, remove=False)
                return None
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read(MAX_ENTRY_BYTES + 1)
        except OSError:
            return None  # vanished or unreadable halfway: a miss
        finally:
            os.close(fd)

    def put(self, key: str, plan: Plan, obj: bytes) -> bool:
        """Store an entry (atomically); False if the directory cannot take it."""
        if not self.usable():
            return False
        data = _pack({"context": context(), "key": key, "plan": plan.to_json()}, obj)
        path = self.path_of(key)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=SUFFIX)  # mode 0600
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            return False  # read-only or full: the program still runs, uncached
        with self._lock:
            known = self._bytes
            if known is not None:
                self._bytes = known + len(data)
        if known is None or known + len(data) > self.max_bytes:
            self.evict()
        return True

    def discard(self, key: str, reason: str) -> None:
        """Drop the entry for `key`: its plan did not fit the graph that asked for it."""
        self._discard(self.path_of(key), reason)

    def _discard(self, path: Path, reason: str, remove: bool = True) -> None:
        action = "discarded" if remove else "refused"
        warnings.warn(f"llgrad: {action} disk cache entry {path.name} ({reason}); recompiling",
                      CacheWarning, stacklevel=3)
        if remove:
            try:
                os.unlink(path)
            except OSError:
                pass

    # -- size and housekeeping -----------------------------------------------------------
    def entries(self) -> list[tuple[Path, int, float]]:
        """(path, bytes, last use) of every entry, oldest first."""
        found = []
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        now = time.time()
        for name in names:
            path = self.root / name
            if _TEMP_NAME.match(name):
                try:
                    if now - os.stat(path).st_mtime > _STALE_TEMP_SECONDS:
                        os.unlink(path)
                except OSError:
                    pass
                continue
            if not _ENTRY_NAME.match(name):
                continue
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):  # a directory or FIFO there is not ours to evict
                found.append((path, st.st_size, st.st_mtime))
        found.sort(key=lambda e: e[2])
        return found

    def evict(self) -> int:
        """Remove least recently used entries until the cache fits its bound; how many went."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        removed = 0
        for path, size, _ in entries:
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # another process evicted it
            except OSError:
                break  # read-only: nothing to do
            total -= size
            removed += 1
        with self._lock:
            self._bytes = total
        return removed

    def clear(self) -> int:
        """Remove every entry (and leftover temporary files); how many entries went."""
        removed = 0
        try:
            names = os.listdir(self.root)
        except OSError:
            return 0
        for name in names:
            if _ENTRY_NAME.match(name) or _TEMP_NAME.match(name):
                try:
                    os.unlink(self.root / name)
                    removed += bool(_ENTRY_NAME.match(name))
                except OSError:
                    pass
        with self._lock:
            self._bytes = 0
        return removed

    def info(self) -> dict:
        """What the cache holds; does not create the directory."""
        exists = self.root.is_dir()
        entries = self.entries() if exists else []
        return {
            "directory": str(self.root),
            "exists": exists,
            "usable": self.usable() if exists else False,
            "refused_because": self.refusal,
            "entries": len(entries),
            "bytes": sum(size for _, size, _ in entries),
            "max_bytes": self.max_bytes,
        }

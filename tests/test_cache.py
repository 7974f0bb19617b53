"""The disk cache of compiled programs: reuse across processes, and faults it must survive.

In-process tests stand in for a fresh process by emptying the in-memory program
cache; the cross-process tests run real child processes on a cache in tmp_path.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import warnings

import llgrad
import numpy as np
import pytest
from llgrad.runtime import diskcache, executor
from llgrad.runtime.diskcache import CacheWarning

# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("LLGRAD_CACHE", "1")
    monkeypatch.setenv("LLGRAD_CACHE_DIR", str(root))
    monkeypatch.delenv("LLGRAD_CACHE_MAX_MB", raising=False)
    executor.clear_memory_cache()
    yield root
    executor.clear_memory_cache()


def graph(n: int = 6, scale: float = 0.5) -> float:
    """Compute a small graph; its structure depends on n only."""
    x = llgrad.arange(float(n))
    return ((x * scale + 1).tanh() * x).sum().item()


def expected(n: int = 6, scale: float = 0.5) -> float:
    x = np.arange(float(n))
    return float((np.tanh(x * scale + 1) * x).sum())


def entries(root) -> list:
    """The programs' entries (each program's kernels have entries of their own: kernel_entries)."""
    return [p for p in sorted(root.glob("*.llgc")) if not _is_kernel(p)]


def kernel_entries(root) -> list:
    return [p for p in sorted(root.glob("*.llgc")) if _is_kernel(p)]


def _is_kernel(path) -> bool:
    header, _ = diskcache._unpack(path.read_bytes())
    return header["key"].startswith("llgrad-kernel ")


def counts(before: dict) -> dict:
    now = executor.stats()
    return {k: now[k] - before[k] for k in ("compiles", "disk_loads")}


def run_fresh(n: int = 6) -> tuple[float, dict]:
    """Compute as a fresh process would: nothing in memory, maybe something on disk."""
    executor.clear_memory_cache()
    before = executor.stats()
    value = graph(n)
    return value, counts(before)


def quietly(fn):
    """fn() and the CacheWarnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in caught if issubclass(w.category, CacheWarning)]


# -- reuse ---------------------------------------------------------------------------------


def test_second_run_loads_object_code_instead_of_compiling(cache_dir):
    value, c = run_fresh()
    assert c == {"compiles": 1, "disk_loads": 0}
    assert value == pytest.approx(expected(), rel=1e-5)
    assert len(entries(cache_dir)) == 1
    value, c = run_fresh()
    assert c == {"compiles": 0, "disk_loads": 1}
    assert value == pytest.approx(expected(), rel=1e-5)
    prog = executor.last_program()
    assert prog.origin == "disk" and prog.plan.symbol == prog.name
    assert executor.stats()["load_seconds"] > 0


def test_a_different_graph_or_context_misses(cache_dir, monkeypatch):
    run_fresh(6)
    _, c = run_fresh(7)
    assert c == {"compiles": 1, "disk_loads": 0}
    # A changed compiler source (or LLVM, or CPU) is another key.
    monkeypatch.setattr(diskcache, "_context", dict(diskcache.context(), sources="changed"))
    _, c = run_fresh(6)
    assert c == {"compiles": 1, "disk_loads": 0}
    assert len(entries(cache_dir)) == 3


def test_cache_directory_is_created_private(tmp_path, cache_dir, monkeypatch):
    deep = tmp_path / "a" / "b" / "llgrad"
    monkeypatch.setenv("LLGRAD_CACHE_DIR", str(deep))
    run_fresh()
    assert stat.S_IMODE(os.stat(deep).st_mode) == 0o700
    (entry,) = entries(deep)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600


def test_disabled_by_environment(cache_dir, monkeypatch):
    monkeypatch.setenv("LLGRAD_CACHE", "0")
    run_fresh()
    _, c = run_fresh()
    assert c == {"compiles": 1, "disk_loads": 0}
    assert not cache_dir.exists()


def test_key_text_is_exact():
    texts = {diskcache.key_text(k) for k in [(1,), (1.0,), (True,), (0.0,), (-0.0,), ("1",), ((1,),)]}
    assert len(texts) == 7  # equal in Python (1 == 1.0 == True, 0.0 == -0.0), apart on disk
    assert diskcache.key_text((object(),)) is None  # no exact text: not cached on disk
    assert diskcache.key_text((llgrad.float32, np.float32(0.5))) == diskcache.key_text(
        (llgrad.float32, np.float32(0.5)))


# -- faults --------------------------------------------------------------------------------


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _corrupt(kind: str, entry, root):
    data = entry.read_bytes()
    if kind == "flipped byte":
        data = _flip(data, len(data) // 2)
    elif kind == "flipped byte in the object code":  # only the checksum can tell
        _, obj = diskcache._unpack(data)
        data = _flip(data, len(data) - 32 - len(obj) // 2)
    elif kind == "truncated":
        data = data[:len(data) // 2]
    elif kind == "truncated to a few bytes":
        data = data[:7]
    elif kind == "empty":
        data = b""
    elif kind == "garbage":
        data = os.urandom(len(data))
    elif kind == "trailing bytes":
        data = data + b"\0" * 16
    elif kind == "foreign entry":  # a valid entry of another program under this name
        entry.unlink()
        graph(9)
        (other,) = entries(root)
        data = other.read_bytes()
        other.unlink()
    elif kind == "plan that does not fit":  # checksum and key right, buffer table wrong
        header, obj = diskcache._unpack(data)
        out = header["plan"]["outputs"][0]
        header["plan"]["bufs"][out][1] = [4096]
        data = diskcache._pack(header, obj)
    entry.write_bytes(data)


@pytest.mark.parametrize("kind", [
    "flipped byte", "flipped byte in the object code", "truncated", "truncated to a few bytes",
    "empty", "garbage", "trailing bytes", "foreign entry", "plan that does not fit",
])
def test_bad_entry_is_discarded_and_recompiled(cache_dir, kind):
    run_fresh()
    (entry,) = entries(cache_dir)
    _corrupt(kind, entry, cache_dir)
    (value, c), warned = quietly(run_fresh)
    assert c == {"compiles": 1, "disk_loads": 0}
    assert value == pytest.approx(expected(), rel=1e-5)
    assert len(warned) == 1 and "discarded disk cache entry" in str(warned[0].message)
    # The entry was rewritten, whole: the next process loads it without complaint.
    (value, c), warned = quietly(run_fresh)
    assert c == {"compiles": 0, "disk_loads": 1} and not warned
    assert entries(cache_dir) == [entry]


def test_directory_writable_by_others_is_refused(cache_dir):
    run_fresh()
    os.chmod(cache_dir, 0o777)
    (value, c), warned = quietly(run_fresh)
    assert c == {"compiles": 1, "disk_loads": 0}
    assert value == pytest.approx(expected(), rel=1e-5)
    assert warned and "writable by other users" in str(warned[0].message)
    os.chmod(cache_dir, 0o700)
    (_, c), warned = quietly(run_fresh)
    assert c == {"compiles": 0, "disk_loads": 1} and not warned


def test_entry_writable_by_others_is_refused_then_replaced(cache_dir):
    run_fresh()
    (entry,) = entries(cache_dir)
    os.chmod(entry, 0o666)
    (_, c), warned = quietly(run_fresh)
    assert c == {"compiles": 1, "disk_loads": 0}
    assert warned and "writable by other users" in str(warned[0].message)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600  # our own fresh copy took its place
    (_, c), warned = quietly(run_fresh)
    assert c == {"compiles": 0, "disk_loads": 1} and not warned


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_entry_or_directory_of_another_user_is_refused(cache_dir):
    run_fresh()
    (entry,) = entries(cache_dir)
    os.chown(entry, 65534, 65534)
    (_, c), warned = quietly(run_fresh)
    assert c == {"compiles": 1, "disk_loads": 0}
    assert warned and "belongs to another user" in str(warned[0].message)
    os.chown(cache_dir, 65534, 65534)
    (_, c), warned = quietly(run_fresh)
    assert c == {"compiles": 1, "disk_loads": 0}
    assert warned and "belongs to another user" in str(warned[0].message)
    os.chown(cache_dir, os.geteuid(), os.getegid())


def test_symlinked_entry_is_refused(cache_dir, tmp_path):
    run_fresh()
    (entry,) = entries(cache_dir)
    elsewhere = tmp_path / "elsewhere.llgc"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    (_, c), warned = quietly(run_fresh)
    assert c == {"compiles": 1, "disk_loads": 0}
    assert warned and "symbolic link" in str(warned[0].message)


def test_missing_directory_that_cannot_be_made_compiles_quietly(tmp_path, cache_dir, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("LLGRAD_CACHE_DIR", str(blocker / "llgrad"))
    (value, c), warned = quietly(run_fresh)
    assert c == {"compiles": 1, "disk_loads": 0} and not warned
    assert value == pytest.approx(expected(), rel=1e-5)


def _read_only(monkeypatch):
    """Make writes into the cache directory fail as on a read-only file system."""
    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(diskcache.tempfile, "mkstemp", refuse)
    monkeypatch.setattr(diskcache.os, "utime", refuse)


def test_read_only_directory_loads_and_compiles_quietly(cache_dir, monkeypatch):
    run_fresh(6)
    if os.geteuid() == 0:
        _read_only(monkeypatch)  # root writes through permission bits
    else:
        os.chmod(cache_dir, 0o500)
    try:
        (value, c), warned = quietly(lambda: run_fresh(6))
        assert c == {"compiles": 0, "disk_loads": 1} and not warned
        (value, c), warned = quietly(lambda: run_fresh(7))
        assert c == {"compiles": 1, "disk_loads": 0} and not warned
        assert value == pytest.approx(expected(7), rel=1e-5)
        assert len(entries(cache_dir)) == 1
    finally:
        os.chmod(cache_dir, 0o700)


def test_size_bound_evicts_least_recently_used(cache_dir, monkeypatch):
    made = []  # per graph: its program's entry and its kernel's (each shape its own kernel)
    for n in (3, 4, 5):
        run_fresh(n)
        made.append({e for e in cache_dir.glob("*.llgc") if not any(e in m for m in made)})
    assert all(len(m) == 2 for m in made)
    for age, files in enumerate(made):  # made[0] oldest ...
        for entry in files:
            os.utime(entry, (1000.0 + age, 1000.0 + age))
    _, c = run_fresh(3)  # ... but used now
    assert c["disk_loads"] == 1
    size = max(sum(e.stat().st_size for e in m) for m in made)
    monkeypatch.setenv("LLGRAD_CACHE_MAX_MB", str(2.5 * size / (1 << 20)))
    run_fresh(6)
    left = set(cache_dir.glob("*.llgc"))
    assert made[0] <= left and not made[1] & left  # the oldest went first, the one just used stayed
    assert len(left - made[0] - made[2]) == 2  # the new program and its kernel
    assert sum(e.stat().st_size for e in left) <= 2.5 * size


# -- across processes ----------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, os, sys, time
    start = time.perf_counter()
    import llgrad
    imported = time.perf_counter()
    go = os.environ.get("TEST_GO")
    if go:  # start together with the other children
        open(os.environ["TEST_READY"] + str(os.getpid()), "w").close()
        while not os.path.exists(go):
            time.sleep(0.002)
        imported = time.perf_counter()
    x = llgrad.arange(12.0).reshape(3, 4)
    y = ((x * 0.5 + 1).tanh() * x).sum(dim=1)
    value = y.tolist()
    done = time.perf_counter()
    print(json.dumps({"value": value, "stats": llgrad.runtime.stats(),
                      "import_s": imported - start, "first_result_s": done - imported}))
""")


def _expected_rows():
    x = np.arange(12.0).reshape(3, 4)
    return (np.tanh(x * 0.5 + 1) * x).sum(axis=1)


def _child_env(root, **extra):
    env = dict(os.environ, LLGRAD_CACHE="1", LLGRAD_CACHE_DIR=str(root))
    env.update(extra)
    env.pop("LLGRAD_CACHE_MAX_MB", None)
    return env


def _spawn(script, env):
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(proc) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def test_a_second_process_loads_instead_of_compiling(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = tmp_path / "cache"
    first, err1 = _result(_spawn(script, _child_env(root)))
    second, err2 = _result(_spawn(script, _child_env(root)))
    assert first["stats"]["compiles"] == 1 and first["stats"]["disk_loads"] == 0
    assert second["stats"]["compiles"] == 0 and second["stats"]["disk_loads"] == 1
    assert second["stats"]["compile_seconds"] == 0.0
    for r in (first, second):
        np.testing.assert_allclose(r["value"], _expected_rows(), rtol=1e-5)
    assert "Warning" not in err1 + err2


def test_processes_compiling_the_same_program_at_once_leave_one_valid_entry(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = tmp_path / "cache"
    go, ready = tmp_path / "go", tmp_path / "ready-"
    env = _child_env(root, TEST_GO=str(go), TEST_READY=str(ready))
    procs = [_spawn(script, env) for _ in range(3)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(procs) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    results = [_result(p) for p in procs]
    for r, err in results:
        np.testing.assert_allclose(r["value"], _expected_rows(), rtol=1e-5)
        assert r["stats"]["compiles"] + r["stats"]["disk_loads"] == 1
        assert "Warning" not in err
    assert len(entries(root)) == 1
    assert not list(root.glob(".tmp-*"))
    after, err = _result(_spawn(script, _child_env(root)))
    assert after["stats"]["disk_loads"] == 1 and "Warning" not in err


def test_cache_command_line_info_and_clear(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = tmp_path / "cache"
    _result(_spawn(script, _child_env(root)))
    cli = [sys.executable, "-m", "llgrad.cache"]
    info = subprocess.run(cli + ["info"], env=_child_env(root), capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    # one program and its kernel
    assert str(root) in info.stdout and "entries:   2 " in info.stdout and "state:     on" in info.stdout
    cleared = subprocess.run(cli + ["clear"], env=_child_env(root), capture_output=True, text=True)
    assert cleared.returncode == 0 and "removed 2 entries" in cleared.stdout
    assert entries(root) == []
    off = subprocess.run(cli + ["info"], env=_child_env(root, LLGRAD_CACHE="0"), capture_output=True,
                         text=True)
    assert "off (LLGRAD_CACHE=0)" in off.stdout

"""LLGRAD_* environment variables: a bad value is reported once, naming the variable, and
its default is used; nothing later raises because of it. Every variable is documented."""

import os
import pathlib
import subprocess
import sys
import warnings

import pytest
from llgrad.runtime import config, threads
from llgrad.runtime.config import ConfigWarning

BAD_VALUES = {
    "LLGRAD_NUM_THREADS": ["abc", "0", "1.5"],
    "LLGRAD_MAX_PROGRAMS": ["many", "0", "-4"],
    "LLGRAD_CACHE": ["maybe"],
    "LLGRAD_CACHE_MAX_MB": ["lots", "nan", "-1", "inf"],
    "LLGRAD_COMPILE_WORKER": ["sometimes"],
    "LLGRAD_INPROCESS_COMPILES": ["-3", "x"],
    "LLGRAD_WORKER_COMPILES": ["0"],
    "LLGRAD_DUMP": ["kernal"],
    "LLGRAD_LOG": ["everything"],
    "LLGRAD_BACKEND": ["tvm"],
}
FREE_TEXT = {"LLGRAD_CACHE_DIR", "LLGRAD_DUMP_DIR", "LLGRAD_MLIR_OPT", "LLGRAD_MLIR_TRANSLATE"}


def test_every_variable_with_a_format_has_bad_values_tested():
    assert set(config.VARIABLES) == set(BAD_VALUES) | FREE_TEXT


@pytest.mark.parametrize("name, text", [(n, t) for n, ts in BAD_VALUES.items() for t in ts])
def test_a_bad_value_warns_once_naming_the_variable_and_gives_the_default(monkeypatch, name, text):
    monkeypatch.setenv(name, text)
    config._parsed.pop((name, text), None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = config.get(name)
        second = config.get(name)
    assert first == second == config.VARIABLES[name].default
    messages = [str(w.message) for w in caught if w.category is ConfigWarning]
    assert len(messages) == 1, messages
    assert name in messages[0] and repr(text) in messages[0] and "default" in messages[0]


def test_good_values_are_parsed(monkeypatch):
    for name, text, want in [("LLGRAD_NUM_THREADS", "3", 3), ("LLGRAD_CACHE", "off", False),
                             ("LLGRAD_CACHE_MAX_MB", "1.5", 1.5), ("LLGRAD_COMPILE_WORKER", "1", "always"),
                             ("LLGRAD_COMPILE_WORKER", "0", "never"), ("LLGRAD_LOG", "compile",
                                                                        frozenset({"compile"}))]:
        monkeypatch.setenv(name, text)
        assert config.get(name) == want


def test_bad_thread_count_falls_back_to_the_cpus(monkeypatch):
    monkeypatch.setenv("LLGRAD_NUM_THREADS", "abc")
    with pytest.warns(ConfigWarning, match="LLGRAD_NUM_THREADS"):
        config._parsed.pop(("LLGRAD_NUM_THREADS", "abc"), None)
        n = threads.thread_count()
    assert n == len(os.sched_getaffinity(0))


def test_large_ops_compute_with_a_bad_thread_count(tmp_path):
    # Once made every large op raise ValueError (int("abc") where the worker pool started).
    code = ("import llgrad, warnings\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    v = (llgrad.ones(512, 512) * 2).sum().item()\n"
            "print(v)\n")
    env = dict(os.environ, LLGRAD_NUM_THREADS="abc", LLGRAD_CACHE="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == 512 * 512 * 2
    assert "LLGRAD_NUM_THREADS" in out.stderr


def test_misspelt_variable_is_reported(monkeypatch):
    monkeypatch.setenv("LLGRAD_NUM_THREAD", "2")
    with pytest.warns(ConfigWarning, match="unknown environment variable LLGRAD_NUM_THREAD "):
        config.check_environment()


def test_every_variable_is_documented_in_the_readme():
    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    missing = [name for name in config.VARIABLES if name not in readme]
    assert not missing, f"README.md does not document {missing}"

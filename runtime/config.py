"""Every LLGRAD_* environment variable: what it means, its default, how its value is read.

Values are looked up when they are used (a program or a test may change the environment
between two computations), but each distinct value is checked once: a value that does not
parse gives one warning that names the variable and the default used instead, never an
exception out of some later computation. `check_environment()` (run when llgrad is
imported) checks the values set at startup and warns about LLGRAD_* names llgrad does not
know (a misspelt variable otherwise does nothing, silently).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass


class ConfigWarning(UserWarning):
    """An LLGRAD_* environment variable was ignored (its default is used instead)."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: object
    parse: Callable[[str], object]  # raises ValueError (with a reason) for a bad value
    doc: str
    default_text: str = ""  # the default in words, where its value says little (None, "")


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("not an integer") from None
        if value < low:
            raise ValueError(f"must be at least {low}")
        return value

    return parse


def _megabytes(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("not a number") from None
    if not value >= 0 or value == float("inf"):  # NaN fails the first test
        raise ValueError("must be a finite number >= 0")
    return value


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _switch(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expected 1/true/yes/on or 0/false/no/off")


def _compile_worker(text: str) -> str:
    word = text.strip().lower()
    if word in ("auto", "always"):
        return "auto" if word == "auto" else "always"
    return "always" if _switch(word) else "never"


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        word = text.strip().lower()
        if word not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return word

    return parse


def _log_topics(text: str) -> frozenset:
    topics = frozenset(t for t in text.replace(" ", "").lower().split(",") if t)
    unknown = sorted(topics - {"compile"})
    if unknown:
        raise ValueError(f"unknown topic {unknown[0]!r} (known: compile)")
    return topics


def _dump_stages(text: str) -> str:
    from .dump import parse_stages  # the stage names live with the printers

    parse_stages(text)
    return text


def _text(text: str) -> str:
    return text


_VARIABLES = [
    Variable("LLGRAD_NUM_THREADS", None, _int_at_least(1),
             "threads a large program runs on", "as many as the CPUs this process may use"),
    Variable("LLGRAD_MAX_PROGRAMS", 256, _int_at_least(1),
             "compiled programs kept in memory, least recently used dropped first; also the bound "
             "on the traced signatures each llgrad.compile function keeps"),
    Variable("LLGRAD_CACHE", True, _switch, "0 turns the disk cache off"),
    Variable("LLGRAD_CACHE_DIR", "", _text, "the disk cache's directory",
             "$XDG_CACHE_HOME/llgrad, else ~/.cache/llgrad"),
    Variable("LLGRAD_CACHE_MAX_MB", 512.0, _megabytes, "the disk cache's size bound in MiB"),
    Variable("LLGRAD_COMPILE_WORKER", "auto", _compile_worker,
             "auto: compile in a helper process after LLGRAD_INPROCESS_COMPILES programs; "
             "0: always in this process; 1: always in the helper"),
    Variable("LLGRAD_INPROCESS_COMPILES", 64, _int_at_least(0),
             "programs compiled in this process before the helper process takes over"),
    Variable("LLGRAD_WORKER_COMPILES", 256, _int_at_least(1),
             "programs one helper process compiles before a fresh one replaces it"),
    Variable("LLGRAD_DUMP", "", _dump_stages, "stages to print for every program (`all`, or a list)",
             "none"),
    Variable("LLGRAD_DUMP_DIR", "", _text, "write dumps to files in this directory instead of stderr",
             "stderr"),
    Variable("LLGRAD_LOG", frozenset(), _log_topics, "`compile`: one line per compile, with its reason",
             "nothing logged"),
    Variable("LLGRAD_BACKEND", "llgrad", _choice("llgrad", "mlir"),
             "`mlir` lowers programs through mlir-opt-19 instead of llgrad's own LLVM emitter"),
    Variable("LLGRAD_MLIR_OPT", "", _text, "the mlir-opt program the mlir backend runs",
             "mlir-opt-19, else mlir-opt, on PATH"),
    Variable("LLGRAD_MLIR_TRANSLATE", "", _text, "the mlir-translate program the mlir backend runs",
             "mlir-translate-19, else mlir-translate, on PATH"),
]
VARIABLES: dict[str, Variable] = {v.name: v for v in _VARIABLES}

# Read by llgrad's own test suite, not by the library: known, so not reported as misspelt.
TEST_VARIABLES = frozenset({"LLGRAD_FUZZ_EXAMPLES", "LLGRAD_FUZZ_SEED", "LLGRAD_UPDATE_GOLDEN"})

_parsed: dict = {}  # (name, text) -> value: each distinct value is parsed (and warned about) once
_lock = threading.Lock()
os.register_at_fork(after_in_child=_lock._at_fork_reinit)  # a thread that held it is gone


def get(name: str):
    """The value of LLGRAD_<...> `name` now: parsed, or its default when unset, empty or bad."""
    var = VARIABLES[name]
    text = os.environ.get(name)
    if text is None or not text.strip():
        return var.default
    try:
        return _parsed[(name, text)]
    except KeyError:
        pass
    try:
        value = var.parse(text)
    except ValueError as e:
        shown = var.default_text or repr(var.default)
        warnings.warn(f"llgrad: ignoring {name}={text!r}: {e}; using the default ({shown})",
                      ConfigWarning, stacklevel=3)
        value = var.default
    with _lock:
        _parsed[(name, text)] = value
    return value


def check_environment() -> None:
    """Check every LLGRAD_* variable set now; warn about unknown names and bad values."""
    for name in sorted(os.environ):
        if not name.startswith("LLGRAD_"):
            continue
        if name in VARIABLES:
            get(name)
        elif name not in TEST_VARIABLES:
            warnings.warn(f"llgrad: unknown environment variable {name} ignored (known: "
                          f"{', '.join(VARIABLES)})", ConfigWarning, stacklevel=2)

"""The benchmark suite (llgrad.bench): a --quick run prints the table and writes the JSON, every
workload's sides are checked against NumPy before they are timed, and a wrong or crashing side is
reported instead of timed. No timing thresholds: only structure and correctness."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import types

import llgrad
import numpy as np
import pytest
from llgrad import bench
from llgrad.bench import machine, report, run
from llgrad.bench.core import Side, Workload, relative_error
from llgrad.bench.workloads import WORKLOADS, common

# torch.compile (20-30 s per graph cold) and jax are left out to keep this fast.
SKIP = "torch.compile,jax.jit"
MEMORY_BOUND = {"chain", "softmax-xent", "layernorm"}
COMPUTE_BOUND = {"mlp", "train-rebind", "matmul"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "run.json"
    command = [sys.executable, "-m", "llgrad.bench", "--quick", "--skip", SKIP, "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return done, json.loads(out.read_text()) if out.exists() else None


def test_quick_run_succeeds_and_writes_json(quick_run):
    done, data = quick_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert data is not None
    assert [row["workload"] for row in data["results"]] == list(WORKLOADS)


def test_table_states_machine_and_versions(quick_run):
    table = quick_run[0].stdout
    assert f"machine: {machine.cpu_model()}" in table
    assert "cores" in table
    assert f"llgrad {llgrad.__version__}" in table and f"numpy {np.__version__}" in table
    assert "memory bandwidth" in table


def test_table_has_a_row_per_workload_and_side(quick_run):
    table = quick_run[0].stdout
    lines = table.splitlines()
    for name in WORKLOADS:
        assert any(line.startswith(f"{name} ") and "llgrad" in line for line in lines), name
    assert sum(line.split()[:1] == ["numpy"] for line in lines) == len(WORKLOADS)  # reference rows
    assert table.count("bandwidth floor") == len(MEMORY_BOUND)


def test_every_side_was_checked_against_numpy_before_timing(quick_run):
    for row in quick_run[1]["results"]:
        sides = row["sides"]
        assert sides["numpy"]["check"] == "ok"
        assert "llgrad" in sides, row["workload"]
        for name, side in sides.items():
            assert side["check"] == "ok", (row["workload"], name, side)
            assert side["max_rel_err"] <= row["tolerance"]
            assert side["first_call_s"] > 0


def test_json_numbers_are_consistent(quick_run):
    data = quick_run[1]
    torch_present = data["config"]["peers"]["torch"] == "yes"
    assert data["config"]["peers"]["torch.compile"] == "skipped (--skip)"
    assert data["bandwidth"]["floor_gbs"] > 0
    for row in data["results"]:
        assert row["reference"] == ("torch" if torch_present else "numpy")
        assert row["sides"][row["reference"]]["speedup_vs_reference"] == pytest.approx(1.0)
        for side in row["sides"].values():
            assert side["min_ms"] <= side["median_ms"] <= side["max_ms"]
            assert side["reps"] >= 1  # min_reps unless a side took more than QUICK.cap_seconds
            assert ("gbs" in side) == (row["workload"] in MEMORY_BOUND)
            assert ("bandwidth_fraction" in side) == (row["workload"] in MEMORY_BOUND)
            assert ("gflops" in side) == (row["workload"] in COMPUTE_BOUND)
        assert ("floor_ms" in row) == (row["workload"] in MEMORY_BOUND)
        assert row["sides"]["llgrad"]["llgrad_compiles"] >= 0


def test_native_kernel_runs_for_chain_when_gcc_is_present(quick_run):
    chain = quick_run[1]["results"][0]
    if "gcc" not in quick_run[1]["versions"]:
        pytest.skip("no gcc")
    assert chain["sides"]["native-C"]["check"] == "ok"


class _Wrong(Workload):
    """A workload whose llgrad side computes the wrong thing and whose native side crashes."""

    name = "wrong"
    summary = "test workload of {size} elements"

    def __init__(self, quick: bool) -> None:
        super().__init__(quick)
        self.size = 3

    def numpy(self) -> Side:
        return Side(lambda: (np.ones(self.size, np.float32), np.float32(2)))

    def llgrad(self) -> Side:
        x = llgrad.ones(self.size)
        return Side(lambda: ((x * 1.001), llgrad.tensor(2.0)))

    def native(self) -> Side:
        return Side(lambda: 1 / 0)


def test_a_wrong_side_fails_its_check_and_is_not_timed():
    peers = run.Peers("not installed", "not installed", frozenset())
    row = run.run_workload(_Wrong(True), peers, run.QUICK, None)
    assert row["summary"] == "test workload of 3 elements"
    assert row["sides"]["llgrad"]["check"] == "FAIL"
    assert row["sides"]["llgrad"]["max_rel_err"] == pytest.approx(1e-3, rel=1e-3)
    assert "median_ms" not in row["sides"]["llgrad"]
    assert row["sides"]["native-C"]["check"] == "error"
    assert "ZeroDivisionError" in row["sides"]["native-C"]["error"]
    assert row["sides"]["numpy"]["reps"] >= run.QUICK.min_reps
    assert row["skipped"]["torch"] == "not installed"


def test_relative_error_rejects_shape_mismatch_and_nan():
    ones = [np.ones(3)]
    assert relative_error(ones, ones) == 0.0
    assert relative_error([np.ones(4)], ones) == float("inf")
    assert relative_error([np.array([1.0, np.nan, 1.0])], ones) == float("inf")
    assert relative_error([np.ones(3), np.ones(1)], ones) == float("inf")
    assert relative_error([np.array([1.0, 1.0, 1.5])], [np.array([1.0, 1.0, 2.0])]) == pytest.approx(0.25)


def test_without_torch_the_reference_is_numpy_and_exit_status_reports_failures(tmp_path, capsys):
    out = tmp_path / "tiny.json"
    args = ["--quick", "--only", "tiny", "--skip", "torch,torch.compile,jax.jit", "--json", str(out)]
    status = bench.main(args)
    assert status == 0
    data = json.loads(out.read_text())
    assert [row["workload"] for row in data["results"]] == ["tiny"]
    assert data["results"][0]["reference"] == "numpy"
    assert set(data["results"][0]["sides"]) == {"llgrad", "llgrad.compile", "numpy"}
    assert "tiny" in capsys.readouterr().out


def test_unknown_names_are_rejected():
    with pytest.raises(SystemExit):
        bench.main(["--only", "nope"])
    with pytest.raises(SystemExit):
        bench.main(["--skip", "numpy"])  # the reference cannot be skipped


def test_plot_draws_a_png_or_says_why_not(quick_run, tmp_path):
    path = tmp_path / "bench.png"
    problem = report.plot(quick_run[1], str(path))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib" in problem
        return
    assert problem is None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_script_is_declared():
    pyproject = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'llgrad-bench = "llgrad.bench:main"' in pyproject
    assert '"llgrad.bench"' in pyproject and '"llgrad.bench.workloads"' in pyproject


def test_llgrad_side_switches_to_nn_functional_when_it_has_the_op(monkeypatch):
    calls = []
    fake = types.ModuleType("llgrad.nn.functional")
    fake.cross_entropy = lambda logits, targets: calls.append(targets.dtype) or logits.sum()
    monkeypatch.setitem(sys.modules, "llgrad.nn.functional", fake)
    loss_fn = common.LlgradCrossEntropy(np.array([0, 2]), 3)
    assert loss_fn.note == "llgrad.nn.functional.cross_entropy"
    loss_fn(llgrad.ones(2, 3))
    assert calls == [llgrad.int64]
    monkeypatch.setattr(common, "USE_FUNCTIONAL", False)  # --llgrad-composite
    composite = common.LlgradCrossEntropy(np.array([0, 2]), 3)
    assert composite.note.startswith("composite")
    want = np.log(3.0)  # uniform logits: -log(1/3)
    assert composite(llgrad.ones(2, 3)).item() == pytest.approx(want, rel=1e-6)

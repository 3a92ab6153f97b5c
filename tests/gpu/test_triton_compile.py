"""Compile-only: every kernel configuration of the 224x224 width-1.0 plan, for sm_90 and sm_80.

No GPU needed: triton.compile runs to PTX and ptxas, which enforce the rules the
interpreter ignores (tl.dot shapes, shared memory, registers). `compile_plan.py`
runs in a child process without TRITON_INTERPRET; here its report is checked
for compile errors, local memory in the PTX and register spills.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mbv2_engine
from mbv2_engine.gpu import DTYPES

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def report() -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    # The package this test imported (installed, or a dev build in the source tree), whatever the cwd.
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(Path(mbv2_engine.__file__).parents[1])])
    done = subprocess.run([sys.executable, str(HERE / "compile_plan.py")], env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, f"compile_plan.py failed:\n{done.stderr[-4000:]}"
    return [json.loads(line) for line in done.stdout.splitlines()]


SHARED_LIMIT = {"sm90": 232448, "sm80": 166912}  # bytes of shared memory one block may opt into


def _rows(report, dtype, target):
    rows = [r for r in report if r["dtype"] == dtype and r["target"] == target]
    assert len(rows) >= 10, f"only {len(rows)} configurations compiled"
    return rows


@pytest.mark.parametrize("target", SHARED_LIMIT)
@pytest.mark.parametrize("dtype", DTYPES)
def test_plan_compiles_and_fits(report, dtype, target):
    """Every configuration compiles, has no local arrays in its PTX and fits in shared memory."""
    for r in _rows(report, dtype, target):
        assert not r["local_in_ptx"], f"{target} {dtype}: .local in the PTX of {r}"
        assert r["shared"] <= SHARED_LIMIT[target], f"{target} {dtype}: too much shared memory in {r}"


@pytest.mark.xfail(reason="ptxas still spills registers in some configurations (listed in docs/gpu.md); "
                          "tiles are to be re-chosen by measuring on a GPU", strict=True)
@pytest.mark.parametrize("target", SHARED_LIMIT)
@pytest.mark.parametrize("dtype", DTYPES)
def test_plan_has_no_register_spills(report, dtype, target):
    spilled = [(r["kernel"], r["consts"], r["num_warps"], r["spill_stores"], r["spill_loads"])
               for r in _rows(report, dtype, target) if r["spill_stores"] or r["spill_loads"]]
    assert not spilled, f"{target} {dtype}: spills in {spilled}"

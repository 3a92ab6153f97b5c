"""Thread counts: their bound, and a worker thread that cannot start. Many Python threads on one
engine, bit for bit against sequential runs, are tests/test_soak.py's."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mbv2_engine


def test_thread_count_is_bounded(small_model_path):
    from mbv2_engine import Engine, _core
    from mbv2_engine.errors import InputError

    for bad in (0, _core.MAX_THREADS + 1, 2 ** 64, True, 2.0):
        with pytest.raises(InputError, match=f"threads must be None or an int from 1 to {_core.MAX_THREADS}"):
            Engine.load(small_model_path, threads=bad)
    with pytest.raises(InputError, match="isa must be a string"):
        Engine.load(small_model_path, isa=None)
    with pytest.raises(InputError, match="threads must be between 1 and 256, got 257"):
        _core.Model({}, [(8, 1, 8, 1)], 8, 8, 2, "torch", "ref", 257)


def test_a_thread_that_cannot_start_is_an_error_not_a_hang(small_model_path, tmp_path):
    """Under an address-space limit, 256 worker stacks do not fit: the load fails with
    OutOfMemoryError and the process exits normally (it used to hang in Model::Model)."""
    script = (
        "import resource, sys\n"
        "from mbv2_engine import Engine\n"
        "from mbv2_engine.errors import OutOfMemoryError\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 31, hard))\n"
        "try:\n"
        f"    Engine.load({str(small_model_path)!r}, threads=256)\n"
        "except OutOfMemoryError as e:\n"
        "    print('refused:', e)\n"
        "    sys.exit(0)\n"
        "print('loaded')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(mbv2_engine.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    if "loaded" in proc.stdout:
        pytest.skip("256 worker threads fit in 2 GiB of address space here: the failure path was not reached")
    assert "could not start worker thread" in proc.stdout and "use fewer threads" in proc.stdout

"""One Engine, many Python threads: the C++ core releases the GIL and leases
each run its own arena, so 8 threads x 50 runs give the single-threaded logits
bit for bit."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import mbv2_engine

THREADS, RUNS = 8, 50


def test_concurrent_runs_match_single_threaded(small_engine):
    rng = np.random.default_rng(0)
    h, w = small_engine.input_size
    # One batch per thread: a shared scratch buffer would mix them up.
    batches = [rng.standard_normal((1, 3, h, w), dtype=np.float32) for _ in range(THREADS)]
    expected = [small_engine.run(b) for b in batches]
    mismatches, errors = [], []

    def worker(t: int) -> None:
        try:
            for _ in range(RUNS):
                if not np.array_equal(small_engine.run(batches[t]), expected[t]):
                    mismatches.append(t)
        except Exception as e:  # noqa: BLE001 - reported below, not swallowed
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert not mismatches, f"{len(mismatches)} of {THREADS * RUNS} runs differ"


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

"""Concurrency and soak (issue 18, item 5): many threads on one engine, long runs, many engines,
and mixed shapes at once, through Python and the C API. Every result is compared bit for bit
with the sequential one; memory is read from /proc/self/status (VmRSS) after glibc has been asked
to return what it holds free (malloc_trim), so that only growth the engine keeps is counted."""
import ctypes
import threading

import numpy as np
import pytest

from mbv2_engine import Engine
from mbv2_engine.cli import cmake_dir
from test_capi_parity import Options  # mbv2_engine_options, field for field

THREADS, RUNS = 8, 1000
LIBRARY = cmake_dir().parents[1] / "libmbv2.so.0"


def rss_bytes() -> int:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def hammer(run, batches, expected, runs=RUNS, pick=lambda t, i: t):
    """THREADS threads, thread t running batches[pick(t, i)] for i < runs (its own batch by default:
    a shared scratch buffer would mix them up); returns the mismatches and errors."""
    mismatches, errors = [], []

    def worker(t: int) -> None:
        try:
            for i in range(runs):
                k = pick(t, i)
                if not np.array_equal(run(batches[k]), expected[k]):
                    mismatches.append((t, k))
        except Exception as e:  # noqa: BLE001 - reported by the caller, not swallowed
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return mismatches, errors


def batches_for(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, 3, h, w), dtype=np.float32) for _ in range(THREADS)]


@pytest.mark.parametrize("engine_threads", [1, 2])
def test_python_threads_on_one_engine_match_sequential_runs(small_model_path, engine_threads):
    engine = Engine.load(small_model_path, threads=engine_threads)
    batches = batches_for(*engine.input_size)
    expected = [engine.run(b) for b in batches]
    mismatches, errors = hammer(engine.run, batches, expected)
    assert not errors and not mismatches, f"{len(mismatches)} of {THREADS * RUNS} runs differ: {errors[:1]}"


@pytest.mark.skipif(not LIBRARY.is_file(), reason="needs the installed wheel's libmbv2 (pip install .)")
@pytest.mark.parametrize("engine_threads", [1, 2])
def test_c_api_threads_on_one_engine_match_sequential_runs(small_model_path, engine_threads):
    lib = ctypes.CDLL(str(LIBRARY))  # ctypes releases the GIL around each call
    engine = ctypes.c_void_p()
    assert lib.mbv2_engine_create_from_file(str(small_model_path).encode(),
                                            ctypes.byref(Options(engine_threads, b"auto")), ctypes.byref(engine)) == 0
    classes = Engine.load(small_model_path, threads=1).num_classes

    def run(x):
        out = np.empty((1, classes), np.float32)
        status = lib.mbv2_engine_run(engine, x.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(1),
                                     ctypes.c_size_t(x.shape[2]), ctypes.c_size_t(x.shape[3]), 0,
                                     out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(out.size))
        assert status == 0
        return out

    try:
        batches = batches_for(64, 64, seed=1)
        expected = [run(b) for b in batches]
        mismatches, errors = hammer(run, batches, expected)
        assert not errors and not mismatches, f"{len(mismatches)} of {THREADS * RUNS} runs differ: {errors[:1]}"
    finally:
        lib.mbv2_engine_destroy(engine)


def test_ten_thousand_runs_keep_memory_flat(small_model_path):
    engine = Engine.load(small_model_path, threads=2)
    x = batches_for(*engine.input_size)[0]
    for _ in range(1000):  # warm-up: plans, arenas, the pool's per-run state
        engine.run(x)
    before = rss_bytes()
    for _ in range(10_000):
        engine.run(x)
    growth = rss_bytes() - before
    print(f"RSS growth over 10,000 runs: {growth / 1024:.0f} KiB")
    assert growth < 1 << 20, f"RSS grew by {growth / 1024:.0f} KiB over 10,000 runs"


def test_a_thousand_engines_leak_nothing(small_model_path):
    x = batches_for(64, 64)[0]

    def cycle():
        engine = Engine.load(small_model_path, threads=2)
        engine.run(x)

    for _ in range(100):  # warm-up: the file's pages, Python's own caches
        cycle()
    before = rss_bytes()
    for _ in range(1000):
        cycle()
    growth = rss_bytes() - before
    print(f"RSS growth over 1,000 engines: {growth / 1024:.0f} KiB")
    # 1000 engines of 0.4 M parameters hold 1.6 GB between them: a leak of any of it shows at once.
    assert growth < 2 << 20, f"RSS grew by {growth / 1024:.0f} KiB over 1,000 engines"


def test_mixed_sizes_and_batches_from_many_threads(small_model_path):
    """Each caller gets its own answer while others run other shapes (plans and arenas per shape)."""
    engine = Engine.load(small_model_path, threads=2)
    rng = np.random.default_rng(3)
    shapes = [(1, 64, 64), (3, 32, 48), (2, 97, 65), (5, 40, 40), (1, 128, 96), (4, 64, 33)]
    batches = [rng.standard_normal((n, 3, h, w), dtype=np.float32) for n, h, w in shapes]
    expected = [engine.run(b) for b in batches]
    mismatches, errors = hammer(engine.run, batches, expected, runs=150, pick=lambda t, i: (t + i) % len(batches))
    assert not errors and not mismatches, f"{len(mismatches)} mixed runs differ: {errors[:1]}"

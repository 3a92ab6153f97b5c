"""One Engine, many Python threads: the C++ core releases the GIL and leases
each run its own arena, so 8 threads x 50 runs give the single-threaded logits
bit for bit."""
import threading

import numpy as np

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

"""The tests' view of the one tolerance table (`mbv2_engine/tolerances.py`).

A failure reports the mismatch count and the first offending indices, so a
loosened tolerance is never the first fix.
"""
import numpy as np

from mbv2_engine.tolerances import TOLERANCES, violations

__all__ = ["TOLERANCES", "assert_close"]


def assert_close(actual, expected, entry: str) -> None:
    atol, rtol, reason = TOLERANCES[entry]
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{entry}: shape {actual.shape} != {expected.shape}"
    bad = violations(actual, expected, entry)
    if bad.any():
        idx = np.argwhere(bad)[:5].tolist()
        err = float(np.abs(actual - expected).max())
        raise AssertionError(f"{entry}: {int(bad.sum())} of {bad.size} values off (max |error| {err:.3g}, "
                             f"atol {atol}, rtol {rtol}: {reason}); first at {idx}")

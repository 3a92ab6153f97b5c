"""The whole network per case and provider (pytest-benchmark); `python bench/compare.py` interleaves them.

Run: `pytest bench/test_bench_network.py --benchmark-json=out.json`. One group per
case, so pytest-benchmark's table puts the providers of a case side by side.
"""
import pytest

from providers import CASES, PROVIDERS


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", CASES)
def test_network(case, provider, workload, ready_or_skip, time_checked):
    c = CASES[case]
    w = workload(c)
    runner = ready_or_skip(PROVIDERS[provider], w)
    time_checked(runner, group=case, provider=provider, macs=w.macs_per_image * c.batch, threads=c.threads,
                 batch=c.batch, size=c.size, width=c.width)

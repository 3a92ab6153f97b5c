"""Fixtures of the pytest-benchmark suites (`pytest bench/`): shared workloads, checked timing."""
import pytest

from providers import Runner, Unavailable, cpu_model, make_workload, ready

CPU = cpu_model()


@pytest.fixture(scope="session")
def workload(tmp_path_factory):
    """`workload(case)`: the case's weights, inputs and PyTorch logits, written once per session."""
    root = tmp_path_factory.mktemp("workloads")
    return lambda case: make_workload(case, root)


@pytest.fixture
def ready_or_skip():
    """`providers.ready`, with a provider that cannot be built here turned into a skip."""
    def build(provider, w) -> Runner:
        try:
            return ready(provider, w)
        except Unavailable as e:
            pytest.skip(f"{provider.name}: {e}")
    return build


@pytest.fixture
def time_checked(benchmark):
    """Time a runner that already passed its check; record GFLOP/s, threads, ISA and CPU with it."""
    def run(runner: Runner, *, group: str, provider: str, macs: int, threads: int, batch: int, size: int,
            width: float) -> None:
        benchmark.group = group
        benchmark.extra_info.update(provider=provider, isa=runner.isa, cpu=CPU, threads=threads, batch=batch,
                                    size=size, width=width, macs=macs)
        benchmark(runner.run)
        if benchmark.stats:  # None under --benchmark-disable, which runs each case once as a check
            benchmark.extra_info["gflops"] = 2 * macs / benchmark.stats.stats.median / 1e9
    return run

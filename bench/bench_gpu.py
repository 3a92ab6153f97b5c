"""GPU benchmark: the Triton engine vs PyTorch eager (channels_last) and torch.compile(max-autotune).

    pytest bench/bench_gpu.py --benchmark-json=bench/results/gpu-raw.json

MobileNetV2 1.0 at 224x224, random calibrated weights, batch 1, 8, 64, 256, 1024
in fp16, bf16 and fp32, every provider fed the same weights and inputs. Each
provider's logits are checked against fp32 eager before it is timed. Rows (img/s,
latency, estimated DRAM bytes per image next to the block-I/O minimum) are saved
as JSON under bench/results/ with the GPU's name. Skipped without CUDA.
"""
import copy
import json
import time
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    pytest.skip("the GPU benchmark needs CUDA", allow_module_level=True)

from mbv2_engine.export import random_model, to_arrays  # noqa: E402
from mbv2_engine.gpu import GpuRunner  # noqa: E402
from mbv2_engine.tolerances import violations  # noqa: E402

BATCHES = (1, 8, 64, 256, 1024)
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
PROVIDERS = ("triton", "eager_channels_last", "compile_max_autotune")
RESULTS = Path(__file__).parent / "results"
ROWS = []


@pytest.fixture(scope="module")
def model():
    return random_model(0, 1.0, 1000, size=(224, 224), progress=False).eval()


@pytest.fixture(scope="module")
def reference(model):
    return copy.deepcopy(model).to("cuda")


@pytest.fixture(scope="module", autouse=True)
def save_rows():
    yield
    if ROWS:
        name = torch.cuda.get_device_name().replace(" ", "_")
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"gpu-{name}.json").write_text(json.dumps(
            {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": ROWS}, indent=1))


_CACHE = {}


def _provider(name: str, dtype: str, model):
    """A callable batch -> logits, built once per (provider, dtype)."""
    key = (name, dtype)
    if key not in _CACHE:
        if name == "triton":
            runner = GpuRunner(to_arrays(model), model.arch, "torch", dtype)
            _CACHE[key] = (runner.run, runner)
        else:
            net = copy.deepcopy(model).to("cuda", DTYPES[dtype]).to(memory_format=torch.channels_last)
            if name == "compile_max_autotune":
                net = torch.compile(net, mode="max-autotune")
            _CACHE[key] = (lambda x, net=net: net(x.to(memory_format=torch.channels_last)), None)
    return _CACHE[key]


def traffic_per_image(runner: GpuRunner, batch: int) -> tuple[float, float]:
    """(plan estimate, block-I/O minimum) of DRAM bytes per image.

    Minimum: every layer reads its input and writes its output once, weights once per
    batch. The plan adds the halo re-reads of each tile (the scratch stays in L2).
    """
    plan = runner.plan_for(batch, 224, 224)
    estimate = minimum = sum(t.numel() * t.element_size() for w in (runner.stem_w, runner.head_w, *runner.block_w)
                             for t in vars(w).values() if isinstance(t, torch.Tensor)) / batch
    for launch in plan.launches:
        tensors = [v for k, v in launch.args.items() if k in ("x_ptr", "out_ptr")]
        io = sum(t.numel() * t.element_size() for t in tensors) / batch
        minimum += io
        c = launch.consts
        if "TILE_H" in c:
            s = c["STRIDE"]
            halo = ((c["TILE_H"] - 1) * s + 3) * ((c["TILE_W"] - 1) * s + 3) / (c["TILE_H"] * c["TILE_W"] * s * s)
            x = launch.args["x_ptr"]
            io += (halo - 1) * x.numel() * x.element_size() / batch
        estimate += io
    return estimate, minimum


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
def test_mobilenet_v2_224(benchmark, model, reference, provider, dtype, batch):
    benchmark.group = f"mobilenet_v2-224-{dtype}-b{batch}"
    run, runner = _provider(provider, dtype, model)
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch)).to("cuda")
    with torch.no_grad():
        expected = reference(x[:8]).float().cpu().numpy()
        got = run(x.to(DTYPES[dtype]))[:8].float().cpu().numpy()
        off = int(violations(got, expected, f"gpu_{dtype}_vs_torch_fp32").sum())
        assert off == 0, f"{provider} {dtype}: {off} logits outside gpu_{dtype}_vs_torch_fp32"

        def step():
            run(x.to(DTYPES[dtype]))
            torch.cuda.synchronize()

        benchmark.pedantic(step, warmup_rounds=3, rounds=20 if batch <= 64 else 8, iterations=1)
    latency = benchmark.stats.stats.median
    row = {"provider": provider, "dtype": dtype, "batch": batch, "latency_ms": latency * 1e3,
           "img_per_s": batch / latency, "gpu": torch.cuda.get_device_name(), "time": time.time()}
    if runner is not None:
        row["dram_bytes_per_image_est"], row["block_io_min_bytes_per_image"] = traffic_per_image(runner, batch)
    benchmark.extra_info.update(row)
    ROWS.append(row)

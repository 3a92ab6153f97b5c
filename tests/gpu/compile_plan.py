"""Compile every kernel configuration of the 224x224 width-1.0 plan for GPU targets, without a GPU.

Run as a script in a process where TRITON_INTERPRET is off (the interpreter
replaces triton.language, so nothing compiles beside it). Prints one JSON object
per (dtype, target, configuration): shared memory, `.local` in the PTX, and the
spill bytes `ptxas -v` reports.
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

from gpu_helpers import network_arrays
from mbv2_engine.arch import build_arch
from mbv2_engine.gpu import DTYPES, GpuRunner

CAPABILITIES = (90, 80)
# batch 1 and a batch past the classifier's 16-row tile cover every configuration the plan picks
BATCHES = (1, 17)
SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def plan_configs(dtype: str) -> dict:
    """Distinct launches of the plans (meta tensors: shapes and dtypes, no data)."""
    runner = GpuRunner(network_arrays(np.random.default_rng(0), build_arch(1.0)), build_arch(1.0),
                       "torch", dtype, device="meta")
    launches = (launch for batch in BATCHES for launch in runner.plan_for(batch, 224, 224).launches)
    return {launch.key(): launch for launch in launches}


def spill_bytes(ptx: str, capability: int, workdir: Path) -> tuple[int, int]:
    src = workdir / "kernel.ptx"
    src.write_text(ptx)
    log = subprocess.run([get_ptxas(capability).path, "-v", f"--gpu-name={sm_arch_from_capability(capability)}",
                          str(src), "-o", str(workdir / "kernel.cubin")],
                         capture_output=True, text=True, check=True).stderr
    stores, loads = SPILLS.search(log).groups()
    return int(stores), int(loads)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in DTYPES:
            for launch in plan_configs(dtype).values():
                for cc in CAPABILITIES:
                    kernel = triton.compile(launch.source(), target=GPUTarget("cuda", cc, 32),
                                            options=launch.options)
                    stores, loads = spill_bytes(kernel.asm["ptx"], cc, Path(tmp))
                    print(json.dumps({"dtype": dtype, "target": f"sm{cc}", "kernel": launch.kernel.__name__,
                                      "consts": launch.consts, **launch.options,
                                      "shared": kernel.metadata.shared,
                                      "local_in_ptx": ".local" in kernel.asm["ptx"],
                                      "spill_stores": stores, "spill_loads": loads}), flush=True)


if __name__ == "__main__":
    sys.exit(main())

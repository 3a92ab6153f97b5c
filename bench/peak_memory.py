"""Peak process memory growth of one provider's load plus one checked inference, in a fresh process.

A fresh interpreter per provider, so no engine inherits another's allocations.
It imports everything first (numpy, torch, the provider's runtime), reads the
inputs, resets the kernel's peak-RSS mark (`/proc/self/clear_refs`), then loads
the model and runs it once; growth = VmHWM at the end - VmRSS at the reset.
The model files are written by the parent beforehand, so exporting ONNX or
.tflite is not counted; torch.compile's compilation is (it is part of loading).
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from providers import PROVIDERS, Provider, Workload, ready

STATUS = Path("/proc/self/status")


def _status_bytes(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise KeyError(field)


def _reset_peak() -> int:
    """Current RSS, after setting the peak mark down to it (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def measure(provider: Provider, w: Workload) -> int:
    """Bytes of peak RSS growth for `provider` on `w`, measured in a subprocess."""
    provider.prepare(w)
    proc = subprocess.run([sys.executable, __file__, provider.name, str(w.dir)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe of {provider.name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])["growth_bytes"]


def _probe(name: str, dir: str) -> None:
    provider = PROVIDERS[name]
    for module in provider.needs:
        importlib.import_module(module)
    w = Workload.open(Path(dir))
    w.x, w.expected  # read before the reset: inputs and reference are the benchmark's memory, not the provider's
    base = _reset_peak()
    ready(provider, w)
    print(json.dumps({"growth_bytes": _status_bytes("VmHWM") - base}))


if __name__ == "__main__":
    _probe(*sys.argv[1:3])

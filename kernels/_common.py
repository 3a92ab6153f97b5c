"""What every kernel module shares: padding rules for packed weights and `Launch`.

A `Launch` is one kernel call with its grid, runtime arguments and compile-time
constants fixed. The GPU runtime replays a list of them per input shape; the
compile-only test turns the same objects into `triton.compile` sources, so what
is compiled in CI is exactly what the plan launches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
from triton.compiler import ASTSource
from triton.runtime.jit import JITFunction

TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
_SIGNATURE_DTYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}
# tl.dot rejects K < 16 for 16-bit inputs (and < 8 for fp32): every K is padded to 16.
DOT_MIN = 16
# fp32 runs exact IEEE fp32 products: TF32 is not allowed, so the fp32 path stays the accuracy path.
DOT_PRECISION = "ieee"


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pow2_at_least_dot(value: int) -> int:
    """A tl.arange length that covers `value` and satisfies the tl.dot minimum."""
    return max(DOT_MIN, triton.next_power_of_2(value))


def k_tile(padded: int) -> int:
    """Reduction chunk for a channel count already padded to 16: 32 when it divides."""
    return 32 if padded % 32 == 0 else 16


def warps_for(acc_elems: int) -> int:
    """Warps for a program whose fp32 accumulator has acc_elems values: about 32 registers each.

    Capped at 8: at 16 warps ptxas spilled more, not less (compile-only report, docs/gpu.md).
    """
    return min(8, max(4, acc_elems // 1024))


def max_programs(device: torch.device) -> int:
    """Resident programs for persistent kernels; the interpreter runs one at a time, so no limit."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count * 4
    return 1 << 30


def padded_tensor(array, shape, dtype, device) -> torch.Tensor:
    """Zero tensor of `shape` with `array` written into its leading corner (zero padding)."""
    src = torch.as_tensor(array, dtype=torch.float32)
    out = torch.zeros(shape, dtype=torch.float32)
    out[tuple(slice(0, s) for s in src.shape)] = src
    return out.to(device=device, dtype=dtype).contiguous()


@dataclass(frozen=True)
class Launch:
    """One kernel call: kernel[grid](**args, **consts, **options)."""

    kernel: object
    grid: tuple[int, ...]
    args: dict
    consts: dict
    num_warps: int
    num_stages: int = 1

    @property
    def options(self) -> dict:
        return {"num_warps": self.num_warps, "num_stages": self.num_stages}

    def __call__(self) -> None:
        self.kernel[self.grid](**self.args, **self.consts, **self.options)

    def key(self) -> tuple:
        return (self.kernel.__name__, tuple(self.signature().items()),
                tuple(sorted(self.consts.items())), self.num_warps, self.num_stages)

    def signature(self) -> dict[str, str]:
        sig = {}
        for name, value in self.args.items():
            sig[name] = "*" + _SIGNATURE_DTYPES[value.dtype] if isinstance(value, torch.Tensor) else "i32"
        sig.update({name: "constexpr" for name in self.consts})
        return sig

    def source(self) -> ASTSource:
        """The compile-only source, with pointers marked 16-byte aligned as a real launch would."""
        fn = self.kernel if isinstance(self.kernel, JITFunction) else JITFunction(self.kernel.fn)
        sig = self.signature()
        attrs = {(fn.arg_names.index(name),): [["tt.divisibility", 16]]
                 for name, kind in sig.items() if kind.startswith("*")}
        return ASTSource(fn, sig, constexprs=dict(self.consts), attrs=attrs)

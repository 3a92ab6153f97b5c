"""Random weights in the weight-file layout (docs/format.md) for kernel-level tests."""
import numpy as np

from mbv2_engine.arch import Arch, BlockSpec

# the interpreter's bf16 tl.dot gives wrong results: bf16 is covered by the compile-only test
TESTED_DTYPES = ("fp32", "fp16")


def _normal(rng, fan_in: int, shape) -> np.ndarray:
    return rng.normal(0.0, fan_in ** -0.5, shape).astype(np.float32)


def block_arrays(rng, spec: BlockSpec, prefix: str = "blocks.0.") -> dict:
    arrays = {}
    if spec.has_expand:
        arrays[prefix + "expand.weight"] = _normal(rng, spec.cin, (spec.hidden, spec.cin))
        arrays[prefix + "expand.bias"] = _normal(rng, 4, spec.hidden)
    arrays[prefix + "depthwise.weight"] = _normal(rng, 9, (spec.hidden, 3, 3))
    arrays[prefix + "depthwise.bias"] = _normal(rng, 4, spec.hidden)
    arrays[prefix + "project.weight"] = _normal(rng, spec.hidden, (spec.cout, spec.hidden))
    arrays[prefix + "project.bias"] = _normal(rng, 4, spec.cout)
    return arrays


def network_arrays(rng, arch: Arch) -> dict:
    arrays = {"stem.weight": _normal(rng, 27, (arch.stem, 3, 3, 3)), "stem.bias": _normal(rng, 4, arch.stem)}
    for i, spec in enumerate(arch.blocks):
        arrays.update(block_arrays(rng, spec, f"blocks.{i}."))
    cin = arch.blocks[-1].cout
    arrays.update({"head.weight": _normal(rng, cin, (arch.last, cin)), "head.bias": _normal(rng, 4, arch.last),
                   "classifier.weight": _normal(rng, arch.last, (arch.num_classes, arch.last)),
                   "classifier.bias": _normal(rng, 4, arch.num_classes)})
    return arrays

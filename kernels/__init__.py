"""Triton kernels of the GPU path, one module per op (shipped as `mbv2_engine.kernels`).

Importing this package imports triton: set TRITON_INTERPRET=1 before it to run
the kernels on the CPU (tests only).
"""
from ._common import TORCH_DTYPES, Launch
from .head import HeadWeights, head, head_launches, pack_head
from .irblock import (IrblockTile, IrblockWeights, irblock, irblock_launch, irblock_scratch_numel,
                      irblock_tile, pack_irblock)
from .stem import StemWeights, pack_stem, stem, stem_launch

__all__ = [
    "TORCH_DTYPES", "Launch", "HeadWeights", "head", "head_launches", "pack_head", "IrblockTile",
    "IrblockWeights", "irblock", "irblock_launch", "irblock_scratch_numel", "irblock_tile",
    "pack_irblock", "StemWeights", "pack_stem", "stem", "stem_launch",
]

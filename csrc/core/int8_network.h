// The int8 network (format version 3, docs/quantization.md): what Model runs
// instead of the float32 blocks and head when its file is quantized.
//
// One image goes: the float32 stem (core/row_sources.h's StemSource), whose
// rows are quantized straight into block 0's ring; 17 fused int8 blocks, each
// a band of output rows per thread, tile by tile: the expand GEMM fills a ring
// of uint8 input rows (every hidden channel: at a quarter of the float bytes
// the ring still fits L2), the depthwise kernel writes a tile of uint8 rows,
// and one projection GEMM over the whole tile requantizes into the block's
// uint8 output, residual added; the head GEMM (int8, ReLU6) into a uint8 row
// block whose sums make the float32 pooled vector; then the float32 Dense
// layers and classifier as for a float32 network (Model::run_dense).
// Every byte is the same whichever thread computes it and whatever the
// split: results never depend on the thread count.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/kernel_set.h"
#include "core/packing.h"
#include "core/plan.h"
#include "core/thread_pool.h"

namespace mbv2 {

struct Int8Network {
  QKernelSet ks;
  std::vector<PackedQBlock> blocks;
  PackedQConv head;
  QuantParams stem_out, head_out;
};

// Checks and packs the int8 members of a version-3 network for `int8_isa`.
Int8Network pack_int8_network(const ArrayMap& arrays, const NetworkSpec& spec, const std::string& int8_isa);

// The plan of an int8 network: the float plan's layers and steps (no halves),
// int8 kernels, int8 tiles and a byte arena (Plan::int8).
Plan make_int8_plan(const NetworkSpec& spec, const KernelSet& float_ks, const Int8Network& net, size_t height,
                    size_t width, size_t threads);

// Step kBlock of an int8 plan: share's band of block i's output rows. The
// image is loaded (float32, core/input.h) at arena + plan.arena.x.
void run_int8_block(const Plan& plan, const NetworkSpec& spec, const KernelSet& float_ks, const PackedConv& stem,
                    const Int8Network& net, float* arena, size_t i, Share share);

// Step kHead: the head's output channels share claims, pooled into
// arena + plan.arena.pooled as float32.
void run_int8_head(const Plan& plan, const Int8Network& net, float* arena, Share share);

}  // namespace mbv2

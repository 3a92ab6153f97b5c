// The fused inverted-residual block (docs/design.md): FusedBlock runs a
// block's output rows in the tiles core/tiling.h chooses, from the depthwise
// input rows a RowSource (core/row_sources.h) writes into its ring.
//
// The driver only ever asks a RowSource for "row iy of the depthwise input" and
// writes output rows into an NHWC tensor. An expand conv, a plain copy (t = 1),
// or the stem conv straight from the image are RowSources, so one loop serves
// every block of the network.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kernel_set.h"
#include "core/packing.h"
#include "core/ring.h"
#include "core/row_sources.h"
#include "core/tiling.h"

namespace mbv2 {

struct BlockScratch {
  float* ring;
  float* tile;
};

// Hidden channels [begin, end) of a block: all of them, or one half (BlockGeometry::half).
struct ChannelRange {
  size_t begin, end;
};

// One thread's run of one block for one image, into `out` (ho x wo x cout,
// NHWC), rows at a time: run() takes any output rows in any order, and the
// ring in `scratch` keeps the input rows the previous rows left (either
// direction), so a thread walking consecutive rows produces each input row
// once. `residual` is the block input tensor when the block adds it (stride
// 1, cin == cout), else null. With hidden channels [begin, end) only, `out`
// starts from bias and residual when begin is 0, else from 0 (a partial sum).
class FusedBlock {
 public:
  FusedBlock(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g, const RowSource& source,
             const float* residual, float* out, const BlockScratch& scratch, ChannelRange hidden);
  // Output rows [rows.begin, rows.end), in tiles of g.tile_rows.
  void run(RowRange rows);

 private:
  void depthwise_project_tile(RowRange tile, size_t c0, size_t cs, const float* residual, float* out);

  const KernelSet& ks_;
  const PackedBlock& block_;
  const BlockGeometry& g_;
  const float* residual_;
  float* out_;
  float* tile_;
  ChannelRange hidden_;
  const RowSource& source_;
  Ring<float> ring_;  // the depthwise input rows under a tile, one slice of hidden channels at a time
};

// out[i] += partial[i] for i in [begin, end): the two halves' sums meet.
void add_partial(const float* partial, size_t begin, size_t end, float* out);

}  // namespace mbv2

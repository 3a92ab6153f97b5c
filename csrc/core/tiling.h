// The tiling policy of the fused blocks: where a block sits at one input size
// and how its output rows and hidden channels are cut so that the working set
// of each step stays in L1 (docs/design.md).
#pragma once

#include <cstddef>

#include "core/kernel_set.h"
#include "core/network.h"

namespace mbv2 {

// About how many output pixels one tile of short rows gathers: every row of a
// 7x7 image (one tile per band, so no halo row is expanded twice) and 10 rows
// of a 14x14 one, bounded for tall, narrow inputs. The 14x14 blocks as one
// tile of 14 rows measured the same (Zen 5, one thread, blocks 7-12).
constexpr size_t kTilePixels = 128;

// The ring's slots: the input rows under tile_rows output rows, 3x3 halo included.
constexpr size_t ring_slots(size_t tile_rows, size_t stride) { return (tile_rows - 1) * stride + 3; }

// Where a block sits at one input size.
struct BlockGeometry {
  size_t h, w;                // input rows and columns
  size_t ho, wo;              // output rows and columns
  size_t pad_top, pad_left;   // zero rows/columns before the input (0 or 1)
  size_t tile_rows;           // output rows whose projection is one GEMM
  size_t slice;               // hidden channels the ring holds at a time
  size_t chunk;               // hidden channels per depthwise -> project step
  // Where the second half of the hidden channels starts, or 0: a block whose
  // whole output is one tile of short rows (the 7x7 blocks at 224x224) runs
  // as two halves of its hidden channels, the second's projection a partial
  // sum added after (Step::kAddHalves). Two threads then take a half each
  // instead of a band of rows: 3-4 output rows of 7 would each expand 4-5
  // input rows (their halo), 9 in all instead of 7. Every thread count runs
  // the same halves, so results stay the same bits.
  size_t half = 0;
  // Short-row tiles, split between threads in fixed bands of rows: a tile
  // split further would expand its halo rows again for every slice of hidden
  // channels. Wide-row tiles are claimed one at a time instead.
  bool banded = false;
  // The ring's rows are expanded a run of consecutive rows at a time, in one
  // GEMM (TensorSource::produce_rows): tiled rows of at most half the expand
  // kernel's row block (KernelSet::expand_block_rows).
  bool expand_runs = false;
};

// Wide rows stream as many output rows at a time as the depthwise kernel
// computes at once (tile_rows = KernelSet::dwconv_rows: 1, or 2 on AVX-512)
// with every hidden channel in the ring, each expanded row produced once and
// kept for the next rows. Short rows (the 7- and 14-wide late blocks) are
// tiled: a tile of several output rows is computed one slice of hidden
// channels at a time, so each slice's expand, depthwise and projection
// weights are read once per tile rather than once per 7-pixel row.
// The block pads as spec.pad says (conv_rows, conv_cols).
BlockGeometry block_geometry(const BlockSpec& spec, size_t h, size_t w, const KernelSet& ks);

// Ring buffer: the input rows under one tile ((tile_rows - 1) x stride + 3),
// each (w + 2) pixels x slice; zero columns either side stand in for
// left/right padding, a zeroed slot for a top/bottom padding row.
size_t ring_floats(const BlockSpec& spec, const BlockGeometry& g);
// Depthwise output of one chunk for a tile: tile_rows x wo pixels x chunk channels.
size_t tile_floats(const BlockGeometry& g);
// BlockGeometry::expand_runs, for an expand kernel of `block_rows`
// (KernelSet::expand_block_rows, QKernelSet::gemm_block_rows) and the tiling
// chosen (the int8 blocks tile their own way).
bool expands_in_runs(const BlockSpec& spec, const BlockGeometry& g, size_t block_rows);
// Where an expand_runs block's GEMM writes a run: the ring's rows of one
// slice without their padding columns (0 for the other blocks).
size_t run_floats(const BlockSpec& spec, const BlockGeometry& g);

}  // namespace mbv2

// The fused inverted-residual block (DESIGN.md section 3) and the row producers
// and consumers that let the stem and the head fuse into it.
//
// The driver only ever asks a RowSource for "row iy of the depthwise input" and
// hands finished output rows to a RowSink. An expand conv, a plain copy (t = 1),
// or the stem conv straight from the image are RowSources; a tensor or the head
// conv + pooling are RowSinks. So one loop serves every block of the network.
#pragma once

#include <cstddef>

#include "core/common.h"
#include "core/kernel_set.h"
#include "core/packing.h"

namespace mbv2 {

// Where a block sits at one input size.
struct BlockGeometry {
  size_t h, w;                // input rows and columns
  size_t ho, wo;              // output rows and columns
  size_t pad_top, pad_left;   // zero rows/columns before the input (0 or 1)
  size_t tile_rows;           // output rows whose projection is one GEMM
  size_t slice;               // hidden channels the ring holds at a time
  size_t chunk;               // hidden channels per depthwise -> project step
};

// Wide rows stream one output row at a time (tile_rows = 1) with every hidden
// channel in the ring, each expanded row produced once and kept for the next
// rows. Short rows (the 7- and 14-wide late blocks) are tiled: a tile of
// several output rows is computed one slice of hidden channels at a time, so
// each slice's expand, depthwise and projection weights are read once per
// tile rather than once per 7-pixel row. feeds_head: the block's rows go to
// the HeadSink, whose groups a tile must not straddle.
BlockGeometry block_geometry(const BlockSpec& spec, size_t h, size_t w, Padding padding, const KernelSet& ks,
                             bool feeds_head);

// Ring buffer: the input rows under one tile ((tile_rows - 1) x stride + 3),
// each (w + 2) pixels x slice; zero columns either side stand in for
// left/right padding, a zeroed slot for a top/bottom padding row.
size_t ring_floats(const BlockSpec& spec, const BlockGeometry& g);
// Depthwise output of one chunk for a tile: tile_rows x wo pixels x chunk channels.
size_t tile_floats(const BlockGeometry& g);

struct BlockScratch {
  float* ring;
  float* tile;
};

class RowSource {
 public:
  virtual ~RowSource() = default;
  // Writes channels c0 .. c0 + channels of row iy of the depthwise input (w
  // pixels, ReLU6 applied) to dst, pixels `channels` floats apart. c0 is a
  // multiple of every panel width (BlockGeometry::slice).
  virtual void produce(size_t iy, size_t c0, size_t channels, float* dst) const = 0;
};

class RowSink {
 public:
  virtual ~RowSink() = default;
  // Where output row oy (wo x cout) is accumulated. The rows of one tile lie
  // back to back, so the projection of a whole tile is one GEMM.
  virtual float* row(size_t oy) = 0;
  // Called once row oy is complete.
  virtual void finish(size_t /*oy*/) {}
};

// Output rows [begin, end) of a block: a thread's band, or the whole image.
struct RowRange {
  size_t begin, end;
};

// Runs one block for one image, output rows `rows` only: the input rows under
// the band (its 2 halo rows included) are produced into this scratch's own
// ring, so bands run independently. `residual` is the block input tensor when
// the block adds it (stride 1, cin == cout), else null.
void run_fused_block(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g, const RowSource& source,
                     const float* residual, RowSink& sink, const BlockScratch& scratch, RowRange rows);

// The same, for a block whose input is a stored NHWC tensor (h x w x cin):
// its rows come from the expand conv, or are copied when t = 1.
void run_block_from_tensor(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g, const float* in,
                           RowSink& sink, const BlockScratch& scratch, RowRange rows);

// Writes output rows into an NHWC tensor.
class TensorSink : public RowSink {
 public:
  TensorSink(float* dst, size_t row_floats) : dst_(dst), row_floats_(row_floats) {}
  float* row(size_t oy) override { return dst_ + oy * row_floats_; }

 private:
  float* dst_;
  size_t row_floats_;
};

// Head fusion: finished rows of the last block gather in groups of
// head_group_rows(); each full group goes through the head 1x1 conv + ReLU6 in one
// call (its 1.6 MB of weights streamed once per group, not once per row) into
// the group's own sums, so neither the last block's output nor the head's
// exists whole. Groups sit at fixed rows and pool() adds their sums in order,
// so the result has the same bits however threads split the rows, provided
// every band starts on a group (Team::band's granule). A tile of the last block
// is at most one group (block_geometry), so its rows lie back to back.
//
// Groups of 4 rows, or of 5 where 4 would leave a last group of one row (5x5
// at 160x160): that group would stream the last block's and the head's 3.5 MB
// of weights again for a single row. Fixed by the image, never by the threads.
constexpr size_t head_group_rows(size_t rows) { return rows % 4 == 1 ? 5 : 4; }

class HeadSink : public RowSink {
 public:
  // group_buffer: head_group_rows(rows) x width x cin floats; group_sums: one head.n
  // vector per group of the `rows` output rows.
  HeadSink(const KernelSet& ks, const PackedConv& head, float* group_buffer, size_t rows, size_t width,
           float* group_sums);
  float* row(size_t oy) override { return group_ + oy % group_rows_ * width_ * head_.k; }
  void finish(size_t oy) override;
  // pooled = the average over all rows x width pixels.
  void pool(float* pooled) const;

 private:
  const KernelSet& ks_;
  const PackedConv& head_;
  float* group_;
  size_t rows_, width_, group_rows_;
  float* group_sums_;
};

// The image, NHWC, padded with a zero column either side and a zero row after
// the last, so the stem kernel reads padding as ordinary pixels.
size_t padded_image_floats(size_t h, size_t w);
void load_padded_image(const float* x, Layout layout, size_t h, size_t w, float* dst);

// Stem fusion: rows of the stem conv, produced on demand into block 0's ring.
class StemSource : public RowSource {
 public:
  StemSource(const KernelSet& ks, const PackedConv& stem, const float* padded_image, size_t h, size_t w,
             Padding padding);
  void produce(size_t iy, size_t c0, size_t channels, float* dst) const override;

 private:
  const KernelSet& ks_;
  const PackedConv& stem_;
  const float* image_;
  size_t h_, wo_, pad_top_, pad_left_, row_stride_;
};

}  // namespace mbv2

// The fused inverted-residual block (DESIGN.md section 3), the row producers
// and consumers around it (the stem fuses into block 0 as a producer), and the
// head with its pooling.
//
// The driver only ever asks a RowSource for "row iy of the depthwise input" and
// writes output rows into an NHWC tensor. An expand conv, a plain copy (t = 1),
// or the stem conv straight from the image are RowSources, so one loop serves
// every block of the network.
#pragma once

#include <cstddef>
#include <cstdint>

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
  // Where the second half of the hidden channels starts, or 0: a block whose
  // whole output is one tile of short rows (the 7x7 blocks at 224x224) runs
  // as two halves of its hidden channels, the second's projection a partial
  // sum added after (Step::kAddHalves). Two threads then take a half each
  // instead of a band of rows: 3-4 output rows of 7 would each expand 4-5
  // input rows (their halo), 9 in all instead of 7. Every thread count runs
  // the same halves, so results stay the same bits.
  size_t half = 0;
};

// Wide rows stream one output row at a time (tile_rows = 1) with every hidden
// channel in the ring, each expanded row produced once and kept for the next
// rows. Short rows (the 7- and 14-wide late blocks) are tiled: a tile of
// several output rows is computed one slice of hidden channels at a time, so
// each slice's expand, depthwise and projection weights are read once per
// tile rather than once per 7-pixel row.
BlockGeometry block_geometry(const BlockSpec& spec, size_t h, size_t w, Padding padding, const KernelSet& ks);

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

// Output rows [begin, end) of a block: a thread's band, or the whole image.
struct RowRange {
  size_t begin, end;
};

// Hidden channels [begin, end) of a block: all of them, or one half (BlockGeometry::half).
struct ChannelRange {
  size_t begin, end;
};

// The rows of a block whose input is a stored NHWC tensor (h x w x cin): its
// expand conv, or copies of the input rows when t = 1.
class TensorSource : public RowSource {
 public:
  TensorSource(const KernelSet& ks, const PackedBlock& block, const float* in, size_t w);
  void produce(size_t iy, size_t c0, size_t channels, float* dst) const override;

 private:
  const KernelSet& ks_;
  const PackedBlock& block_;
  const float* in_;
  size_t w_;
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
  // The depthwise input rows under one tile, for one slice of hidden channels.
  class Ring {
   public:
    Ring(const BlockGeometry& g, size_t stride, const RowSource& source, float* buffer);
    void fill(RowRange tile, size_t c0, size_t cs);
    const float* tap_row(size_t oy, size_t ky) const;
    size_t pixel_stride() const { return cs_; }

   private:
    // At most (kTilePixels - 1) x 2 + 3 (fused_block.cc): a tile has at most
    // kTilePixels rows.
    static constexpr size_t kMaxSlots = 257;
    float* slot(size_t padded) const;
    void start_slice(size_t c0, size_t cs);

    const BlockGeometry& g_;
    const size_t stride_, slots_;
    const RowSource& source_;
    float* const buffer_;
    size_t c0_ = SIZE_MAX, cs_ = 0;
    size_t held_[kMaxSlots];  // the padded row each slot holds, SIZE_MAX for none
  };

  void depthwise_project_tile(RowRange tile, size_t c0, size_t cs, const float* residual, float* out);

  const KernelSet& ks_;
  const PackedBlock& block_;
  const BlockGeometry& g_;
  const float* residual_;
  float* out_;
  float* tile_;
  ChannelRange hidden_;
  Ring ring_;
};

// out[i] += partial[i] for i in [begin, end): the two halves' sums meet.
void add_partial(const float* partial, size_t begin, size_t end, float* out);

// The head 1x1 conv + ReLU6 + global average pool over the last block's
// output (pixels x head.k, stored: 7x7x320 at 224x224), for head channels
// [n0, n1) only, so a team splits the head's 1.6 MB of weights by output
// channel. The pixels go through the kernel in blocks of a fixed size, each
// head channel's sum in the same order whoever computes it: the 7x7x1280 head
// output exists only in registers, and every split gives the same bits.
// n0 and n1 are multiples of head.nr (or n1 = head.n).
void head_pool(const KernelSet& ks, const PackedConv& head, const float* in, size_t pixels, size_t n0, size_t n1,
               float* pooled);

// The image, NHWC, padded with a zero column either side and a zero row after
// the last, so the stem kernel reads padding as ordinary pixels.
size_t padded_image_floats(size_t h, size_t w);
// Image rows [y0, y1) with their zero columns (and the zero row after the last
// when y1 = h), so a team loads the image in bands. False when a value read is
// NaN or infinite: ReLU6 would clamp it to a plausible number, so the caller
// must fail rather than return logits. The test reads each row right after
// its copy, in L1 (a few us per 224x224 image, where numpy's isfinite took 20).
bool load_padded_image(const float* x, Layout layout, size_t h, size_t w, size_t y0, size_t y1, float* dst);
// NaN and infinite values among x[0 .. n), for the error message.
size_t count_non_finite(const float* x, size_t n);

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

// The row producers of the fused blocks: what fills a block's ring with rows
// of its depthwise input. An expand conv, a plain copy (t = 1), or the stem
// conv straight from the image are RowSources, so one driver (FusedBlock,
// core/fused_block.h) serves every block of the network.
#pragma once

#include <cstddef>

#include "core/kernel_set.h"
#include "core/network.h"
#include "core/packing.h"

namespace mbv2 {

class RowSource {
 public:
  virtual ~RowSource() = default;
  // Writes channels c0 .. c0 + channels of row iy of the depthwise input (w
  // pixels, ReLU6 applied) to dst, pixels `channels` floats apart. c0 is a
  // multiple of every panel width (BlockGeometry::slice).
  virtual void produce(size_t iy, size_t c0, size_t channels, float* dst) const = 0;
  // Rows first .. first + n - 1 the same way, row first + k at dsts[k].
  virtual void produce_rows(size_t first, size_t n, size_t c0, size_t channels, float* const* dsts) const {
    for (size_t k = 0; k < n; k++) produce(first + k, c0, channels, dsts[k]);
  }
};

// The rows of a block whose input is a stored NHWC tensor (h x w x cin): its
// expand conv, or copies of the input rows when t = 1. Given `runs` (room for
// the ring's rows of one slice, BlockGeometry::expand_runs), produce_rows
// expands all its rows in one GEMM there and copies them into place: the
// ring's rows are apart by their padding columns, so one GEMM cannot write
// them where they go.
class TensorSource : public RowSource {
 public:
  TensorSource(const KernelSet& ks, const PackedBlock& block, const float* in, size_t w, float* runs = nullptr);
  void produce(size_t iy, size_t c0, size_t channels, float* dst) const override;
  void produce_rows(size_t first, size_t n, size_t c0, size_t channels, float* const* dsts) const override;

 private:
  void expand(size_t first, size_t n, size_t c0, size_t channels, float* dst) const;

  const KernelSet& ks_;
  const PackedBlock& block_;
  const float* in_;
  size_t w_;
  float* runs_;
};

// Stem fusion: rows of the stem conv, produced on demand into block 0's ring.
class StemSource : public RowSource {
 public:
  StemSource(const KernelSet& ks, const PackedConv& stem, const float* padded_image, size_t h, size_t w,
             const PadRule& pad);
  void produce(size_t iy, size_t c0, size_t channels, float* dst) const override;

 private:
  const KernelSet& ks_;
  const PackedConv& stem_;
  const float* image_;
  size_t h_, wo_, pad_top_, pad_left_, row_stride_;
};

}  // namespace mbv2

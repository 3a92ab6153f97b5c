// The ring of a fused block: the depthwise input rows under one tile of output
// rows. One template serves the float32 blocks (FusedBlock, core/fused_block.h,
// one slice of hidden channels at a time) and the int8 blocks
// (core/int8_network.cc, every hidden channel in one slice of bytes), so the
// two keep the same slots, held rows and padding rows.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/tiling.h"

namespace mbv2 {

// Output rows [begin, end) of a block: a thread's band, or the whole image.
struct RowRange {
  size_t begin, end;
};

// Row p of the padded input (p counts the top padding) lives in slot p %
// slots, as (w + 2) pixels of pixel_stride() elements with a zero pixel either
// side: the side columns stand in for left/right padding, a zeroed row for a
// top/bottom padding row (zero is the int8 input's zero point too). The rows
// under one tile are consecutive, so they never share a slot; rows a previous
// tile of the same slice left are kept, so a thread walking consecutive rows
// produces each input row once.
template <class T>
class Ring {
 public:
  Ring(const BlockGeometry& g, size_t stride, T* buffer)
      : g_(g), stride_(stride), slots_(ring_slots(g.tile_rows, stride)), buffer_(buffer) {}

  // Selects what the ring holds of each row: the channels from c0 on, pixels
  // `pixel_stride` elements apart. A new slice empties the ring: nothing in it
  // is of use to other channels, and the side columns are cleared for the new
  // pixel stride (other blocks leave their own layouts in the buffer). Call it
  // before the first fill.
  void select_slice(size_t c0, size_t pixel_stride) {
    if (c0 == c0_ && pixel_stride == cs_) return;
    c0_ = c0;
    cs_ = pixel_stride;
    for (size_t s = 0; s < slots_; s++) {
      held_[s] = SIZE_MAX;
      std::fill_n(slot(s), cs_, T(0));
      std::fill_n(slot(s) + (g_.w + 1) * cs_, cs_, T(0));
    }
  }

  // Makes the ring hold the rows under output rows `tile` (of the selected
  // slice): produce_runs(iy, n, dsts) writes input rows iy .. iy + n - 1, row
  // iy + k's w pixels at dsts[k], for each run of consecutive rows the ring
  // does not hold yet.
  template <class ProduceRuns>
  void fill_runs(RowRange tile, ProduceRuns&& produce_runs) {
    T* dsts[kMaxSlots];
    size_t first = 0, n = 0;  // the run being gathered
    for (size_t p = tile.begin * stride_; p <= (tile.end - 1) * stride_ + 2; p++) {
      if (held_[p % slots_] == p) continue;
      held_[p % slots_] = p;
      T* dst = slot(p) + cs_;
      if (p < g_.pad_top || p - g_.pad_top >= g_.h) {
        std::fill_n(dst, g_.w * cs_, T(0));  // a padding row
        continue;
      }
      const size_t iy = p - g_.pad_top;
      if (n > 0 && iy != first + n) {
        produce_runs(first, n, dsts);
        n = 0;
      }
      if (n == 0) first = iy;
      dsts[n++] = dst;
    }
    if (n > 0) produce_runs(first, n, dsts);
  }

  // fill_runs a row at a time: produce(iy, dst).
  template <class Produce>
  void fill(RowRange tile, Produce&& produce) {
    fill_runs(tile, [&](size_t first, size_t n, T* const* dsts) {
      for (size_t k = 0; k < n; k++) produce(first + k, dsts[k]);
    });
  }

  // The pixel under tap (ky, kx = 0) of output pixel 0 of row oy: SAME padding
  // with nothing before the input starts the taps one column later.
  // tap_row(oy, i) for i >= 3 is input row i of a tile starting at row oy
  // (the depthwise kernels take a tile's rows at once).
  const T* tap_row(size_t oy, size_t ky) const { return slot(oy * stride_ + ky) + (1 - g_.pad_left) * cs_; }
  size_t pixel_stride() const { return cs_; }

  // At most (kTilePixels - 1) x 2 + 3 (core/tiling.h): a tile has at most
  // kTilePixels rows.
  static constexpr size_t kMaxSlots = 257;
  static_assert(ring_slots(kTilePixels, 2) <= kMaxSlots, "a tile of kTilePixels rows must fit the ring's slots");

 private:
  T* slot(size_t padded) const { return buffer_ + padded % slots_ * (g_.w + 2) * cs_; }

  const BlockGeometry& g_;
  const size_t stride_, slots_;
  T* const buffer_;
  size_t c0_ = SIZE_MAX, cs_ = 0;  // the selected slice: none yet
  size_t held_[kMaxSlots];         // the padded row each slot holds, SIZE_MAX for none
};

}  // namespace mbv2

#include "core/fused_block.h"

#include <algorithm>
#include <cstdint>

namespace mbv2 {

// Row p of the padded input (p counts the top padding) lives in slot p %
// slots, as (w + 2) pixels of `slice` floats with zero columns either side.
// The rows under one tile are consecutive, so they never share a slot.
FusedBlock::Ring::Ring(const BlockGeometry& g, size_t stride, const RowSource& source, float* buffer)
    : g_(g), stride_(stride), slots_(ring_slots(g.tile_rows, stride)), source_(source), buffer_(buffer) {
  static_assert(ring_slots(kTilePixels, 2) <= kMaxSlots, "a tile of kTilePixels rows must fit the ring's slots");
}

// Makes the ring hold the rows under output rows `tile`, channels c0 .. c0 +
// cs. Within one slice, rows a previous tile left are kept: with a single
// slice (wide rows) a thread walking consecutive rows produces each row once.
void FusedBlock::Ring::fill(RowRange tile, size_t c0, size_t cs) {
  if (c0 != c0_ || cs != cs_) start_slice(c0, cs);
  for (size_t p = tile.begin * stride_; p <= (tile.end - 1) * stride_ + 2; p++) {
    if (held_[p % slots_] == p) continue;
    held_[p % slots_] = p;
    float* dst = slot(p) + cs_;
    if (p < g_.pad_top || p - g_.pad_top >= g_.h) {
      std::fill(dst, dst + g_.w * cs_, 0.0f);  // a padding row
    } else {
      source_.produce(p - g_.pad_top, c0_, cs_, dst);
    }
  }
}

// The pixel under tap (ky, kx = 0) of output pixel 0 of row oy: SAME padding
// with nothing before the input starts the taps one column later.
const float* FusedBlock::Ring::tap_row(size_t oy, size_t ky) const {
  return slot(oy * stride_ + ky) + (1 - g_.pad_left) * cs_;
}

float* FusedBlock::Ring::slot(size_t padded) const { return buffer_ + padded % slots_ * (g_.w + 2) * cs_; }

// Nothing in the ring is of use to a new slice; the side columns are cleared
// for its pixel stride (other blocks leave their own layouts).
void FusedBlock::Ring::start_slice(size_t c0, size_t cs) {
  c0_ = c0;
  cs_ = cs;
  for (size_t s = 0; s < slots_; s++) {
    held_[s] = SIZE_MAX;
    std::fill_n(slot(s), cs_, 0.0f);
    std::fill_n(slot(s) + (g_.w + 1) * cs_, cs_, 0.0f);
  }
}

FusedBlock::FusedBlock(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g, const RowSource& source,
                       const float* residual, float* out, const BlockScratch& scratch, ChannelRange hidden)
    : ks_(ks),
      block_(block),
      g_(g),
      residual_(residual),
      out_(out),
      tile_(scratch.tile),
      hidden_(hidden),
      ring_(g, block.spec.stride, source, scratch.ring) {}

void FusedBlock::run(RowRange rows) {
  const size_t cout = block_.spec.cout;
  for (size_t oy = rows.begin; oy < rows.end; oy += g_.tile_rows) {
    const RowRange tile{oy, std::min(oy + g_.tile_rows, rows.end)};
    float* out = out_ + oy * g_.wo * cout;
    const float* residual = residual_ ? residual_ + oy * g_.w * block_.spec.cin : nullptr;
    for (size_t c0 = hidden_.begin; c0 < hidden_.end; c0 += g_.slice) {
      const size_t cs = std::min(g_.slice, hidden_.end - c0);
      ring_.fill(tile, c0, cs);
      depthwise_project_tile(tile, c0, cs, residual, out);
    }
  }
}

// Step 2 of the fused algorithm for the ring's slice: per chunk of hidden
// channels, depthwise every row of the tile into the depthwise tile, then
// straight into the projection of the whole tile (one GEMM of tile rows x wo
// pixels) while the depthwise output is in cache. The block's first chunk
// starts the output rows from bias and residual (a second half's partial sum
// from zero); every later chunk adds onto them.
void FusedBlock::depthwise_project_tile(RowRange tile, size_t c0, size_t cs, const float* residual, float* out) {
  const auto& dw = ks_.dwconv(block_.spec.stride);
  const PackedConv& project = block_.project;
  const size_t m = (tile.end - tile.begin) * g_.wo;
  for (size_t c = c0; c < c0 + cs; c += g_.chunk) {
    const size_t cc = std::min(g_.chunk, c0 + cs - c);
    const float* dw_panels = block_.depthwise.panels.data() + c / dw.nr * block_.depthwise.panel_stride;
    for (size_t oy = tile.begin; oy < tile.end; oy++) {
      const float* taps[3];
      for (size_t ky = 0; ky < 3; ky++) taps[ky] = ring_.tap_row(oy, ky) + (c - c0);
      dw.fn(g_.wo, cc, taps, ring_.pixel_stride(), dw_panels, tile_ + (oy - tile.begin) * g_.wo * cc, cc);
    }
    const bool first = c == hidden_.begin, whole = hidden_.begin == 0;
    const float* bias = first && whole ? project.bias.data() : nullptr;
    const float* start = !first ? out : whole ? residual : nullptr;
    ks_.project.fn(m, project.n, cc, tile_, cc, project.row(c), project.panel_stride, bias,
                   start, out, project.n);
  }
}

void add_partial(const float* partial, size_t begin, size_t end, float* out) {
  for (size_t i = begin; i < end; i++) out[i] += partial[i];
}

}  // namespace mbv2

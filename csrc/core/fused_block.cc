#include "core/fused_block.h"

#include <algorithm>

namespace mbv2 {

FusedBlock::FusedBlock(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g, const RowSource& source,
                       const float* residual, float* out, const BlockScratch& scratch, ChannelRange hidden)
    : ks_(ks),
      block_(block),
      g_(g),
      residual_(residual),
      out_(out),
      tile_(scratch.tile),
      hidden_(hidden),
      source_(source),
      ring_(g, block.spec.stride, scratch.ring) {}

void FusedBlock::run(RowRange rows) {
  const size_t cout = block_.spec.cout;
  for (size_t oy = rows.begin; oy < rows.end; oy += g_.tile_rows) {
    const RowRange tile{oy, std::min(oy + g_.tile_rows, rows.end)};
    float* out = out_ + oy * g_.wo * cout;
    const float* residual = residual_ ? residual_ + oy * g_.w * block_.spec.cin : nullptr;
    for (size_t c0 = hidden_.begin; c0 < hidden_.end; c0 += g_.slice) {
      const size_t cs = std::min(g_.slice, hidden_.end - c0);
      // The slice's input rows from the source; with a single slice (wide
      // rows) those a previous tile left stay.
      ring_.select_slice(c0, cs);
      ring_.fill_runs(tile, [&](size_t first, size_t n, float* const* dsts) {
        source_.produce_rows(first, n, c0, cs, dsts);
      });
      depthwise_project_tile(tile, c0, cs, residual, out);
    }
  }
}

// Step 2 of the fused algorithm for the ring's slice: per chunk of hidden
// channels, depthwise every row of the tile into the depthwise tile (one
// kernel call, which may compute rows in pairs), then
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
    const size_t rows = tile.end - tile.begin, inputs = ring_slots(rows, block_.spec.stride);
    const float* taps[Ring<float>::kMaxSlots];
    for (size_t i = 0; i < inputs; i++) taps[i] = ring_.tap_row(tile.begin, i) + (c - c0);
    dw.fn(g_.wo, cc, taps, ring_.pixel_stride(), dw_panels, tile_, cc, rows, g_.wo * cc);
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

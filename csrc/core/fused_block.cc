#include "core/fused_block.h"

#include <algorithm>
#include <cstring>

namespace mbv2 {
namespace {

// Half of a 32 KB L1 data cache, in floats: room for the depthwise tile, the
// projection weights of one chunk and the output row they accumulate into,
// leaving the rest for the ring rows streaming through.
constexpr size_t kL1BudgetFloats = 16 * 1024 / sizeof(float);

size_t choose_chunk(const BlockSpec& spec, size_t wo, size_t nr) {
  const size_t fixed = wo * spec.cout;
  const size_t per_channel = wo + spec.cout;
  const size_t fit = fixed < kL1BudgetFloats ? (kL1BudgetFloats - fixed) / per_channel / nr * nr : 0;
  const size_t all = (spec.hidden() + nr - 1) / nr * nr;
  return std::min(std::max(fit, nr), all);
}

class ExpandSource : public RowSource {
 public:
  ExpandSource(const KernelSet& ks, const PackedConv& expand, const float* in, size_t w, size_t cin)
      : ks_(ks), expand_(expand), in_(in), w_(w), cin_(cin) {}
  void produce(size_t iy, float* dst) const override {
    ks_.expand.fn(w_, expand_.n, cin_, in_ + iy * w_ * cin_, cin_, expand_.panels.data(), dst, expand_.n);
  }

 private:
  const KernelSet& ks_;
  const PackedConv& expand_;
  const float* in_;
  size_t w_, cin_;
};

// t = 1 without a stem in front: the depthwise input is the block input itself.
class CopySource : public RowSource {
 public:
  CopySource(const float* in, size_t row_floats) : in_(in), row_floats_(row_floats) {}
  void produce(size_t iy, float* dst) const override {
    std::memcpy(dst, in_ + iy * row_floats_, row_floats_ * sizeof(float));
  }

 private:
  const float* in_;
  size_t row_floats_;
};

// The ring's side columns are shared with other blocks' layouts, so they are
// cleared at the start of every block; produced rows only write columns 1..w.
void clear_ring_sides(float* ring, size_t w, size_t hidden) {
  const size_t row_floats = (w + 2) * hidden;
  for (size_t slot = 0; slot < 3; slot++) {
    float* row = ring + slot * row_floats;
    std::fill(row, row + hidden, 0.0f);
    std::fill(row + (w + 1) * hidden, row + row_floats, 0.0f);
  }
}

// The epilogue's additions happen first: the row starts as bias (+ residual),
// then every chunk's projection accumulates on top.
void init_output_row(const PackedConv& project, const float* residual_row, size_t wo, float* out) {
  const size_t cout = project.n;
  for (size_t x = 0; x < wo; x++) {
    float* px = out + x * cout;
    std::copy(project.bias.begin(), project.bias.end(), px);
    if (residual_row) {
      for (size_t c = 0; c < cout; c++) px[c] += residual_row[x * cout + c];
    }
  }
}

// Steps 2 of the fused algorithm: per chunk of hidden channels, depthwise into
// the tile, then straight into the projection while the tile is in L1.
void depthwise_project_row(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g,
                           const float* const* rows, float* tile, float* out) {
  const auto& dw = ks.dwconv(block.spec.stride);
  const size_t hidden = block.spec.hidden();
  for (size_t c0 = 0; c0 < hidden; c0 += g.chunk) {
    const size_t cc = std::min(g.chunk, hidden - c0);
    const float* chunk_rows[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    dw.fn(g.wo, cc, chunk_rows, hidden, block.depthwise.panels.data() + c0 / dw.nr * block.depthwise.panel_stride,
          tile, cc);
    ks.project.fn(g.wo, block.project.n, cc, tile, cc, block.project.panels.data() + c0 * block.project.nr,
                  block.project.panel_stride, out, block.project.n);
  }
}

}  // namespace

BlockGeometry block_geometry(const BlockSpec& spec, size_t h, size_t w, Padding padding, const KernelSet& ks) {
  const size_t wo = conv_out(w, spec.stride);
  return {h,
          w,
          conv_out(h, spec.stride),
          wo,
          pad_before(h, spec.stride, padding),
          pad_before(w, spec.stride, padding),
          choose_chunk(spec, wo, ks.dwconv(spec.stride).nr)};
}

size_t ring_floats(const BlockSpec& spec, const BlockGeometry& g) { return 3 * (g.w + 2) * spec.hidden(); }

size_t tile_floats(const BlockGeometry& g) { return g.wo * g.chunk; }

void run_fused_block(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g, const RowSource& source,
                     const float* residual, RowSink& sink, const BlockScratch& scratch, RowRange band) {
  const size_t hidden = block.spec.hidden();
  const size_t row_floats = (g.w + 2) * hidden;
  clear_ring_sides(scratch.ring, g.w, hidden);
  // Input row p of the padded input (p counts the top padding) lives in slot
  // p % 3. The three rows under one output row are consecutive, so they never
  // share a slot, and a padding row can borrow its slot as zeros.
  auto slot = [&](size_t padded) { return scratch.ring + padded % 3 * row_floats; };
  // Column 0 of a ring row is the left padding; SAME padding with nothing
  // before the input starts the taps one column later.
  const size_t first_column = (1 - g.pad_left) * hidden;
  // Rows are produced in order, each once per band: the first is the one under
  // tap ky = 0 of the band's first output row.
  const size_t first_padded = band.begin * block.spec.stride;
  size_t next_row = first_padded > g.pad_top ? first_padded - g.pad_top : 0;
  for (size_t oy = band.begin; oy < band.end; oy++) {
    const float* rows[3];
    for (size_t ky = 0; ky < 3; ky++) {
      const size_t padded = oy * block.spec.stride + ky;
      if (padded < g.pad_top || padded - g.pad_top >= g.h) {
        std::fill(slot(padded) + hidden, slot(padded) + (g.w + 1) * hidden, 0.0f);
      } else {
        for (; next_row <= padded - g.pad_top; next_row++) {
          source.produce(next_row, slot(next_row + g.pad_top) + hidden);
        }
      }
      rows[ky] = slot(padded) + first_column;
    }
    float* out = sink.row(oy);
    init_output_row(block.project, residual ? residual + oy * g.w * block.spec.cin : nullptr, g.wo, out);
    depthwise_project_row(ks, block, g, rows, scratch.tile, out);
    sink.finish(oy);
  }
}

void run_block_from_tensor(const KernelSet& ks, const PackedBlock& block, const BlockGeometry& g, const float* in,
                           RowSink& sink, const BlockScratch& scratch, RowRange rows) {
  const ExpandSource expand(ks, block.expand, in, g.w, block.spec.cin);
  const CopySource copy(in, g.w * block.spec.cin);
  const RowSource& source = block.spec.has_expand() ? static_cast<const RowSource&>(expand) : copy;
  run_fused_block(ks, block, g, source, block.spec.residual() ? in : nullptr, sink, scratch, rows);
}

HeadSink::HeadSink(const KernelSet& ks, const PackedConv& head, float* group_buffer, size_t rows, size_t width,
                   float* group_sums)
    : ks_(ks), head_(head), group_(group_buffer), rows_(rows), width_(width), group_sums_(group_sums) {}

void HeadSink::finish(size_t oy) {
  const size_t filled = oy % kHeadGroupRows + 1;
  if (filled < kHeadGroupRows && oy + 1 < rows_) return;
  float* sums = group_sums_ + oy / kHeadGroupRows * head_.n;
  std::fill(sums, sums + head_.n, 0.0f);
  ks_.head.fn(filled * width_, head_.n, head_.k, group_, head_.k, head_.panels.data(), sums);
}

void HeadSink::pool(float* pooled) const {
  std::fill(pooled, pooled + head_.n, 0.0f);
  for (size_t g = 0; g * kHeadGroupRows < rows_; g++) {
    for (size_t i = 0; i < head_.n; i++) pooled[i] += group_sums_[g * head_.n + i];
  }
  const float scale = 1.0f / static_cast<float>(rows_ * width_);
  for (size_t i = 0; i < head_.n; i++) pooled[i] *= scale;
}

size_t padded_image_floats(size_t h, size_t w) { return (h + 1) * (w + 2) * 3; }

void load_padded_image(const float* x, Layout layout, size_t h, size_t w, float* dst) {
  const size_t row_floats = (w + 2) * 3;
  std::fill(dst, dst + padded_image_floats(h, w), 0.0f);
  for (size_t y = 0; y < h; y++) {
    float* row = dst + y * row_floats + 3;
    if (layout == Layout::NHWC) {
      std::memcpy(row, x + y * w * 3, w * 3 * sizeof(float));
      continue;
    }
    for (size_t c = 0; c < 3; c++) {
      const float* plane_row = x + (c * h + y) * w;
      for (size_t px = 0; px < w; px++) row[px * 3 + c] = plane_row[px];
    }
  }
}

StemSource::StemSource(const KernelSet& ks, const PackedConv& stem, const float* padded_image, size_t h, size_t w,
                       Padding padding)
    : ks_(ks),
      stem_(stem),
      image_(padded_image),
      h_(h),
      wo_(conv_out(w, 2)),
      pad_top_(pad_before(h, 2, padding)),
      pad_left_(pad_before(w, 2, padding)),
      row_stride_((w + 2) * 3) {}

void StemSource::produce(size_t iy, float* dst) const {
  const float* rows[3];
  for (size_t ky = 0; ky < 3; ky++) {
    const size_t padded = iy * 2 + ky;
    const bool inside = padded >= pad_top_ && padded - pad_top_ < h_;
    const size_t y = inside ? padded - pad_top_ : h_;  // row h is the zero row
    rows[ky] = image_ + y * row_stride_ + (1 - pad_left_) * 3;
  }
  ks_.stem.fn(wo_, stem_.n, rows, stem_.panels.data(), dst, stem_.n);
}

}  // namespace mbv2

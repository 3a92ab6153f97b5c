#include "core/row_sources.h"

#include <algorithm>

namespace mbv2 {

TensorSource::TensorSource(const KernelSet& ks, const PackedBlock& block, const float* in, size_t w, float* runs)
    : ks_(ks), block_(block), in_(in), w_(w), runs_(runs) {}

void TensorSource::produce(size_t iy, size_t c0, size_t channels, float* dst) const {
  const size_t cin = block_.spec.cin;
  if (!block_.spec.has_expand()) {
    const float* row = in_ + iy * w_ * cin;
    for (size_t x = 0; x < w_; x++) std::copy_n(row + x * cin + c0, channels, dst + x * channels);
    return;
  }
  expand(iy, 1, c0, channels, dst);
}

void TensorSource::produce_rows(size_t first, size_t n, size_t c0, size_t channels, float* const* dsts) const {
  if (!runs_ || n == 1 || !block_.spec.has_expand()) return RowSource::produce_rows(first, n, c0, channels, dsts);
  expand(first, n, c0, channels, runs_);
  for (size_t k = 0; k < n; k++) std::copy_n(runs_ + k * w_ * channels, w_ * channels, dsts[k]);
}

// Rows first .. first + n - 1 of the expand conv, n * w pixels in one GEMM (the input rows are consecutive).
void TensorSource::expand(size_t first, size_t n, size_t c0, size_t channels, float* dst) const {
  const size_t cin = block_.spec.cin;
  const PackedConv& expand = block_.expand;
  const float* panels = expand.panels.data() + c0 / expand.nr * expand.panel_stride;
  ks_.expand.fn(n * w_, channels, cin, in_ + first * w_ * cin, cin, panels, dst, channels);
}

StemSource::StemSource(const KernelSet& ks, const PackedConv& stem, const float* padded_image, size_t h, size_t w,
                       const PadRule& pad)
    : ks_(ks),
      stem_(stem),
      image_(padded_image),
      h_(h),
      wo_(conv_cols(w, 2, pad).out),
      pad_top_(conv_rows(h, 2, pad).pad_before),
      pad_left_(conv_cols(w, 2, pad).pad_before),
      row_stride_((w + 2) * 3) {}

void StemSource::produce(size_t iy, size_t c0, size_t channels, float* dst) const {
  const float* rows[3];
  for (size_t ky = 0; ky < 3; ky++) {
    const size_t padded = iy * 2 + ky;
    const bool inside = padded >= pad_top_ && padded - pad_top_ < h_;
    const size_t y = inside ? padded - pad_top_ : h_;  // row h is the zero row
    rows[ky] = image_ + y * row_stride_ + (1 - pad_left_) * 3;
  }
  ks_.stem.fn(wo_, channels, rows, stem_.panels.data() + c0 / stem_.nr * stem_.panel_stride, dst, channels);
}

}  // namespace mbv2

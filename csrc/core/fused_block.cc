#include "core/fused_block.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mbv2 {
namespace {

// Half of a 32 KB L1 data cache, in floats: room for the depthwise tile, the
// projection weights of one chunk and the output row they accumulate into,
// leaving the rest for the ring rows streaming through.
constexpr size_t kL1BudgetFloats = 16 * 1024 / sizeof(float);
// Rows this wide or narrower are tiled: a 7-pixel row would stream a late
// block's 0.6-1.2 MB of weights (more than L2 holds, with the head's) from L3
// for only 7 rows of M, and a 14-pixel row its 0.4 MB from L2 for 14 (tiling
// the 14x14 blocks measured 6% faster there).
constexpr size_t kShortRow = 14;
// About how many output pixels one tile of short rows gathers: every row of a
// 7x7 or 14x14 image (one tile per band, so no halo row is expanded twice),
// but bounded for tall, narrow inputs.
constexpr size_t kTilePixels = 128;
// Ring and depthwise tile of short-row blocks, in floats: they stay well below
// the wide blocks' ring (3 x 114 x 96 floats at 224x224).
constexpr size_t kShortRingFloats = 24 * 1024;
constexpr size_t kShortTileFloats = 8 * 1024;
// Pixels per head kernel call: all 49 of a 7x7 map, so the head's weights
// stream from L3 once per image; bigger maps go in blocks whose input rows
// (128 x 320 floats, 160 KB) stay in L2 while every panel passes over them.
constexpr size_t kHeadPixels = 128;

size_t round_down(size_t n, size_t multiple) { return n / multiple * multiple; }

size_t choose_chunk(const BlockSpec& spec, size_t wo, size_t nr) {
  const size_t fixed = wo * spec.cout;
  const size_t per_channel = wo + spec.cout;
  const size_t fit = fixed < kL1BudgetFloats ? round_down((kL1BudgetFloats - fixed) / per_channel, nr) : 0;
  const size_t all = (spec.hidden() + nr - 1) / nr * nr;
  return std::min(std::max(fit, nr), all);
}

// The size of the fewest near-equal parts of n no larger than `most`, rounded
// up to a multiple of `granule` (so the last part may be a little shorter).
size_t split_evenly(size_t n, size_t most, size_t granule) {
  const size_t parts = (n + most - 1) / most;
  return std::min(most, ((n + parts - 1) / parts + granule - 1) / granule * granule);
}

constexpr size_t ring_slots(size_t tile_rows, size_t stride) { return (tile_rows - 1) * stride + 3; }

// Slices start on a panel of every kernel that reads or writes the ring.
size_t slice_granule(const KernelSet& ks) {
  return std::max({ks.expand.nr, ks.stem.nr, ks.dwconv3x3s1.nr, ks.dwconv3x3s2.nr});
}

void choose_tiling(const BlockSpec& spec, const KernelSet& ks, BlockGeometry& g) {
  const size_t hidden = spec.hidden(), dw_nr = ks.dwconv(spec.stride).nr;
  if (g.wo > kShortRow) {
    g.tile_rows = 1;
    g.slice = hidden;
    g.chunk = choose_chunk(spec, g.wo, dw_nr);
    return;
  }
  g.tile_rows = std::min(g.ho, (kTilePixels + g.wo - 1) / g.wo);
  const size_t granule = slice_granule(ks);
  if (g.tile_rows == g.ho && hidden >= 2 * granule) g.half = round_down(hidden / 2, granule);
  const size_t ring_pixels = ring_slots(g.tile_rows, spec.stride) * (g.w + 2);
  g.slice = std::min(hidden, std::max(granule, round_down(kShortRingFloats / ring_pixels, granule)));
  const size_t fit = std::max(dw_nr, round_down(kShortTileFloats / (g.tile_rows * g.wo), dw_nr));
  if (g.half) {
    // Slices and chunks that split a half evenly: the ring and tile limits
    // alone cut a half of 480 into 288 + 192 and those into chunks of 160,
    // 128 and 32, and the short ones made one thread 1-2% slower.
    g.slice = split_evenly(g.half, g.slice, granule);
    g.chunk = split_evenly(g.slice, fit, dw_nr);
    return;
  }
  g.chunk = std::min(fit, (g.slice + dw_nr - 1) / dw_nr * dw_nr);
}

}  // namespace

BlockGeometry block_geometry(const BlockSpec& spec, size_t h, size_t w, Padding padding, const KernelSet& ks) {
  BlockGeometry g{h, w, conv_out(h, spec.stride), conv_out(w, spec.stride), pad_before(h, spec.stride, padding),
                  pad_before(w, spec.stride, padding), 0, 0, 0};
  choose_tiling(spec, ks, g);
  return g;
}

size_t ring_floats(const BlockSpec& spec, const BlockGeometry& g) {
  return ring_slots(g.tile_rows, spec.stride) * (g.w + 2) * g.slice;
}

size_t tile_floats(const BlockGeometry& g) { return g.tile_rows * g.wo * g.chunk; }

TensorSource::TensorSource(const KernelSet& ks, const PackedBlock& block, const float* in, size_t w)
    : ks_(ks), block_(block), in_(in), w_(w) {}

void TensorSource::produce(size_t iy, size_t c0, size_t channels, float* dst) const {
  const size_t cin = block_.spec.cin;
  const float* row = in_ + iy * w_ * cin;
  if (!block_.spec.has_expand()) {
    for (size_t x = 0; x < w_; x++) std::copy_n(row + x * cin + c0, channels, dst + x * channels);
    return;
  }
  const PackedConv& expand = block_.expand;
  const float* panels = expand.panels.data() + c0 / expand.nr * expand.panel_stride;
  ks_.expand.fn(w_, channels, cin, row, cin, panels, dst, channels);
}

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
    ks_.project.fn(m, project.n, cc, tile_, cc, project.panels.data() + c * project.nr, project.panel_stride, bias,
                   start, out, project.n);
  }
}

void add_partial(const float* partial, size_t begin, size_t end, float* out) {
  for (size_t i = begin; i < end; i++) out[i] += partial[i];
}

void head_pool(const KernelSet& ks, const PackedConv& head, const float* in, size_t pixels, size_t n0, size_t n1,
               float* pooled) {
  const float* panels = head.panels.data() + n0 / head.nr * head.panel_stride;
  std::fill(pooled + n0, pooled + n1, 0.0f);
  for (size_t p = 0; p < pixels; p += kHeadPixels) {
    ks.head.fn(std::min(kHeadPixels, pixels - p), n1 - n0, head.k, in + p * head.k, head.k, panels, pooled + n0);
  }
  const float scale = 1.0f / static_cast<float>(pixels);
  for (size_t n = n0; n < n1; n++) pooled[n] *= scale;
}

size_t padded_image_floats(size_t h, size_t w) { return (h + 1) * (w + 2) * 3; }

namespace {

constexpr uint32_t kExponentBits = 0x7f800000u;

// True if x[0 .. n) holds NaN or an infinity. Adding 1 to the exponent field
// carries into the sign bit only when the field is all ones: integer adds and
// ors vectorise with plain SSE2 (float compares with NaN, or unsigned max,
// would not), so this costs a few microseconds per image, on a row just read.
bool any_non_finite(const float* x, size_t n) {
  uint32_t carries = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    carries |= (bits & kExponentBits) + 0x00800000u;
  }
  return (carries & 0x80000000u) != 0;
}

}  // namespace

bool load_padded_image(const float* x, Layout layout, size_t h, size_t w, size_t y0, size_t y1, float* dst) {
  const size_t row_floats = (w + 2) * 3;
  if (y1 == h) std::fill_n(dst + h * row_floats, row_floats, 0.0f);  // the zero row after the last
  bool bad = false;
  for (size_t y = y0; y < y1; y++) {
    float* row = dst + y * row_floats;
    std::fill_n(row, 3, 0.0f);
    std::fill_n(row + (w + 1) * 3, 3, 0.0f);
    float* px = row + 3;
    if (layout == Layout::NHWC) {
      std::memcpy(px, x + y * w * 3, w * 3 * sizeof(float));
      bad |= any_non_finite(x + y * w * 3, w * 3);
      continue;
    }
    // One pass over the three planes' rows, writing each pixel whole.
    const float* r = x + y * w;
    const float* g = r + h * w;
    const float* b = g + h * w;
    for (size_t i = 0; i < w; i++) {
      px[3 * i] = r[i];
      px[3 * i + 1] = g[i];
      px[3 * i + 2] = b[i];
    }
    bad |= any_non_finite(r, w) || any_non_finite(g, w) || any_non_finite(b, w);
  }
  return !bad;
}

size_t count_non_finite(const float* x, size_t n) {
  return std::count_if(x, x + n, [](float v) { return !std::isfinite(v); });
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

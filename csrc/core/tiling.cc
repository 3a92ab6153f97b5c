#include "core/tiling.h"

#include <algorithm>

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
// Ring and depthwise tile of short-row blocks, in floats: they stay well below
// the wide blocks' ring (3 x 114 x 96 floats at 224x224).
constexpr size_t kShortRingFloats = 24 * 1024;
constexpr size_t kShortTileFloats = 8 * 1024;

size_t round_down(size_t n, size_t multiple) { return n / multiple * multiple; }

// bf16 kernels get twice the budgets: their projection weights are half the
// bytes, and at twice the multiply rate a call's fixed costs (its tiles'
// loads and stores, rounding A) weigh twice as much, so longer chunks pay
// (measured on Zen 5, 224x224, one thread: 5% off the whole network).
size_t budget_scale(const KernelSet& ks) { return ks.bf16 ? 2 : 1; }

size_t choose_chunk(const BlockSpec& spec, size_t wo, size_t nr, size_t budget) {
  const size_t fixed = wo * spec.cout;
  const size_t per_channel = wo + spec.cout;
  const size_t fit = fixed < budget ? round_down((budget - fixed) / per_channel, nr) : 0;
  const size_t all = (spec.hidden() + nr - 1) / nr * nr;
  return std::min(std::max(fit, nr), all);
}

// The size of the fewest near-equal parts of n no larger than `most`, rounded
// up to a multiple of `granule` (so the last part may be a little shorter).
size_t split_evenly(size_t n, size_t most, size_t granule) {
  const size_t parts = (n + most - 1) / most;
  return std::min(most, ((n + parts - 1) / parts + granule - 1) / granule * granule);
}

// Slices start on a panel of every kernel that reads or writes the ring.
size_t slice_granule(const KernelSet& ks) {
  return std::max({ks.expand.nr, ks.stem.nr, ks.dwconv3x3s1.nr, ks.dwconv3x3s2.nr});
}

void choose_tiling(const BlockSpec& spec, const KernelSet& ks, BlockGeometry& g) {
  const size_t hidden = spec.hidden(), dw_nr = ks.dwconv(spec.stride).nr;
  if (g.wo > kShortRow) {
    g.tile_rows = 1;
    g.slice = hidden;
    g.chunk = choose_chunk(spec, g.wo, dw_nr, kL1BudgetFloats * budget_scale(ks));
    return;
  }
  g.tile_rows = std::min(g.ho, (kTilePixels + g.wo - 1) / g.wo);
  const size_t granule = slice_granule(ks);
  if (g.tile_rows == g.ho && hidden >= 2 * granule) g.half = round_down(hidden / 2, granule);
  const size_t ring_pixels = ring_slots(g.tile_rows, spec.stride) * (g.w + 2);
  g.slice = std::min(hidden, std::max(granule, round_down(kShortRingFloats / ring_pixels, granule)));
  const size_t fit =
      std::max(dw_nr, round_down(kShortTileFloats * budget_scale(ks) / (g.tile_rows * g.wo), dw_nr));
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

BlockGeometry block_geometry(const BlockSpec& spec, size_t h, size_t w, const KernelSet& ks) {
  const ConvAxis rows = conv_rows(h, spec.stride, spec.pad), cols = conv_cols(w, spec.stride, spec.pad);
  BlockGeometry g{h, w, rows.out, cols.out, rows.pad_before, cols.pad_before, 0, 0, 0};
  choose_tiling(spec, ks, g);
  return g;
}

size_t ring_floats(const BlockSpec& spec, const BlockGeometry& g) {
  return ring_slots(g.tile_rows, spec.stride) * (g.w + 2) * g.slice;
}

size_t tile_floats(const BlockGeometry& g) { return g.tile_rows * g.wo * g.chunk; }

}  // namespace mbv2

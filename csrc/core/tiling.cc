#include "core/tiling.h"

#include <unistd.h>

#include <algorithm>
#include <numeric>

namespace mbv2 {
namespace {

// The L1 data cache per core the budgets below scale with, as the OS reports
// it (sysconf): 32 KB when unknown, and at most 64 KB.
size_t l1d_floats() {
  static const size_t floats = [] {
    const long bytes = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    return std::clamp<size_t>(bytes > 0 ? static_cast<size_t>(bytes) : 0, 32 * 1024, 64 * 1024) / sizeof(float);
  }();
  return floats;
}

// Half of L1, in floats: room for the depthwise tile, the projection weights
// of one chunk and the output row they accumulate into, leaving the rest for
// the ring rows streaming through. 16 KB on a 32 KB L1; the 24 KB of a 48 KB
// L1 gives blocks 3-5 chunks of 64 channels, two whole AVX-512 panels, where
// 16 KB gave 32 (5-6% faster blocks on Zen 5).
size_t wide_budget_floats() { return l1d_floats() / 2; }
// Rows this wide or narrower are tiled: a 7-pixel row would stream a late
// block's 0.6-1.2 MB of weights (more than L2 holds, with the head's) from L3
// for only 7 rows of M, and a 14-pixel row its 0.4 MB from L2 for 14 (tiling
// the 14x14 blocks measured 6% faster there).
constexpr size_t kShortRow = 14;
// Ring of short-row blocks, in floats: well below the wide blocks' ring
// (3 x 114 x 96 floats at 224x224).
constexpr size_t kShortRingFloats = 24 * 1024;
// Their depthwise tile: L1's size (8K floats on a 32 KB L1), so a chunk of the
// 14x14 blocks is 64 channels on a 48 KB L1, where 8K floats gave 48.
size_t short_tile_floats() { return l1d_floats(); }

size_t round_down(size_t n, size_t multiple) { return n / multiple * multiple; }

// The budgets above, scaled for the kernels. bf16 kernels get twice: their
// projection weights are half the bytes, and at twice the multiply rate a
// call's fixed costs (its tiles' loads and stores, rounding A) weigh twice as
// much, so longer chunks pay (measured on Zen 5, 224x224, one thread: 5% off
// the whole network). The AVX2 float32 kernels get 1.5 times: their
// depthwise reads the ring in 8-pixel windows (ukernels/x86-dwconv.h), not
// whole rows per channel tile, so less of L1 needs keeping for the ring, and
// fewer chunks mean fewer passes of the projection over its output rows.
// Measured on Zen 3 (32 KB L1, AVX2 only), 224x224, one thread, per-block
// best-of-300 sums interleaved in pairs: 7.63-7.68 ms against 7.85-7.87
// (stem + block 0 6%, blocks 7-12 3-4% faster); twice was no better than 1.5.
size_t scale_budget(const KernelSet& ks, size_t floats) {
  if (ks.bf16) return floats * 2;
  return ks.isa == "avx2" ? floats * 3 / 2 : floats;
}

// Hidden channels per chunk for a tile of `pixels` output pixels.
size_t choose_chunk(const BlockSpec& spec, size_t pixels, size_t nr, size_t budget) {
  const size_t fixed = pixels * spec.cout;
  const size_t per_channel = pixels + spec.cout;
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

// Chunks are whole panels of the depthwise and of the expand kernel: a chunk
// of 56 channels left the AVX-512 expand a 24-wide panel (12% slower per call
// than 64, hot in cache; blocks 7-12 3% faster with whole panels, Zen 5).
size_t chunk_granule(const BlockSpec& spec, const KernelSet& ks) {
  return std::lcm(ks.dwconv(spec.stride).nr, ks.expand.nr);
}

void choose_tiling(const BlockSpec& spec, const KernelSet& ks, BlockGeometry& g) {
  const size_t hidden = spec.hidden(), chunk_nr = chunk_granule(spec, ks);
  if (g.wo > kShortRow) {
    g.tile_rows = std::min(g.ho, ks.dwconv_rows);
    g.slice = hidden;
    g.chunk = choose_chunk(spec, g.tile_rows * g.wo, chunk_nr, scale_budget(ks, wide_budget_floats()));
    return;
  }
  g.tile_rows = std::min(g.ho, (kTilePixels + g.wo - 1) / g.wo);
  g.banded = true;
  const size_t granule = slice_granule(ks);
  if (g.tile_rows == g.ho && hidden >= 2 * granule) g.half = round_down(hidden / 2, granule);
  const size_t ring_pixels = ring_slots(g.tile_rows, spec.stride) * (g.w + 2);
  g.slice = std::min(hidden, std::max(granule, round_down(kShortRingFloats / ring_pixels, granule)));
  const size_t fit =
      std::max(chunk_nr, round_down(scale_budget(ks, short_tile_floats()) / (g.tile_rows * g.wo), chunk_nr));
  if (g.half) {
    // Slices and chunks that split a half evenly: the ring and tile limits
    // alone cut a half of 480 into 288 + 192 and those into chunks of 160,
    // 128 and 32, and the short ones made one thread 1-2% slower.
    g.slice = split_evenly(g.half, g.slice, granule);
    g.chunk = split_evenly(g.slice, fit, chunk_nr);
    return;
  }
  g.chunk = std::min(fit, (g.slice + chunk_nr - 1) / chunk_nr * chunk_nr);
}

}  // namespace

BlockGeometry block_geometry(const BlockSpec& spec, size_t h, size_t w, const KernelSet& ks) {
  const ConvAxis rows = conv_rows(h, spec.stride, spec.pad), cols = conv_cols(w, spec.stride, spec.pad);
  BlockGeometry g{h, w, rows.out, cols.out, rows.pad_before, cols.pad_before, 0, 0, 0};
  choose_tiling(spec, ks, g);
  g.expand_runs = expands_in_runs(spec, g, ks.expand_block_rows);
  return g;
}

bool expands_in_runs(const BlockSpec& spec, const BlockGeometry& g, size_t block_rows) {
  return spec.has_expand() && g.banded && 2 * g.w <= block_rows;
}

size_t ring_floats(const BlockSpec& spec, const BlockGeometry& g) {
  return ring_slots(g.tile_rows, spec.stride) * (g.w + 2) * g.slice;
}

size_t tile_floats(const BlockGeometry& g) { return g.tile_rows * g.wo * g.chunk; }

size_t run_floats(const BlockSpec& spec, const BlockGeometry& g) {
  return g.expand_runs ? ring_slots(g.tile_rows, spec.stride) * g.w * g.slice : 0;
}

}  // namespace mbv2

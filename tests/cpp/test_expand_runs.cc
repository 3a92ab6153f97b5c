// The ring's runs (Ring::fill_runs) and the expand of a run in one GEMM
// (TensorSource::produce_rows): every row the depthwise reads is the one a
// row-at-a-time fill writes, bit for bit, whichever way the tiles walk.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/kernel_set.h"
#include "core/packing.h"
#include "core/ring.h"
#include "core/row_sources.h"
#include "core/tiling.h"

namespace {

using mbv2::BlockGeometry;
using mbv2::RowRange;

// A short-row geometry (tile_rows > 1): h x w input, stride and top padding as given.
BlockGeometry geometry(size_t h, size_t w, size_t stride, size_t pad_top, size_t tile_rows, size_t slice) {
  BlockGeometry g{};
  g.h = h;
  g.w = w;
  g.pad_top = pad_top;
  g.pad_left = 1;
  g.ho = (h + 2 * pad_top - 3) / stride + 1;
  g.wo = (w + 2 - 3) / stride + 1;
  g.tile_rows = tile_rows;
  g.slice = slice;
  g.chunk = slice;
  return g;
}

// Walks the output rows in tiles (forwards, backwards, or shuffled by `order`
// when it is not 0), filling one ring a
// run at a time and another a row at a time with the same rows (row iy:
// every element iy + 1): each fill's runs are consecutive rows not held, and
// the two rings hold the same bytes.
void walk(const BlockGeometry& g, size_t stride, bool backwards, unsigned order = 0) {
  const size_t floats = mbv2::ring_slots(g.tile_rows, stride) * (g.w + 2) * g.slice;
  std::vector<float> by_runs(floats, -1.0f), by_rows(floats, -1.0f);
  mbv2::Ring<float> runs(g, stride, by_runs.data()), rows(g, stride, by_rows.data());
  runs.select_slice(0, g.slice);
  rows.select_slice(0, g.slice);
  std::vector<int> produced(g.h, 0);
  const size_t tiles = (g.ho + g.tile_rows - 1) / g.tile_rows;
  std::vector<size_t> walk(tiles);
  for (size_t t = 0; t < tiles; t++) walk[t] = backwards ? tiles - 1 - t : t;
  if (order) {
    std::mt19937 rng(order);
    walk.resize(4 * tiles);
    for (size_t& t : walk) t = rng() % tiles;
  }
  for (const size_t t : walk) {
    const size_t oy = t * g.tile_rows;
    const RowRange tile{oy, std::min(oy + g.tile_rows, g.ho)};
    runs.fill_runs(tile, [&](size_t first, size_t n, float* const* dsts) {
      for (size_t k = 0; k < n; k++) {
        ASSERT_LT(first + k, g.h);
        produced[first + k]++;
        std::fill_n(dsts[k], g.w * g.slice, float(first + k + 1));
      }
    });
    rows.fill(tile, [&](size_t iy, float* dst) { std::fill_n(dst, g.w * g.slice, float(iy + 1)); });
    ASSERT_EQ(0, std::memcmp(by_runs.data(), by_rows.data(), floats * sizeof(float))) << "tile at row " << oy;
    for (size_t y = tile.begin; y < tile.end; y++) {
      for (size_t ky = 0; ky < 3; ky++) {
        const size_t padded = y * stride + ky;
        const bool inside = padded >= g.pad_top && padded - g.pad_top < g.h;
        const float* tap = runs.tap_row(y, ky) + (g.pad_left == 1 ? g.slice : 0);  // pixel 0 of the row
        EXPECT_EQ(tap[0], inside ? float(padded - g.pad_top + 1) : 0.0f) << "row " << y << " tap " << ky;
      }
    }
  }
  if (!backwards && !order) {
    for (size_t iy = 0; iy < g.h; iy++) EXPECT_EQ(produced[iy], 1) << "input row " << iy;
  }
}

TEST(RingRuns, MatchRowAtATimeFills) {
  for (size_t stride : {1, 2}) {
    for (size_t h : {1, 2, 7, 14, 15}) {
      for (size_t tile_rows : {2, 3, 7, 10}) {
        for (bool backwards : {false, true}) {
          const BlockGeometry g = geometry(h, 5, stride, 1, tile_rows, 16);
          SCOPED_TRACE("stride " + std::to_string(stride) + " h " + std::to_string(h) + " tile " +
                       std::to_string(tile_rows) + (backwards ? " backwards" : ""));
          walk(g, stride, backwards);
          for (unsigned order = 1; order <= 20; order++) walk(g, stride, false, order);
        }
      }
    }
  }
}

// A block's expand weights (hidden x cin, biases) from a seed, as a file would hold them.
struct Weights {
  std::vector<float> expand, expand_bias, dw, dw_bias, project, project_bias;
  mbv2::ArrayMap arrays;
  Weights(size_t cin, size_t hidden, size_t cout, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    auto fill = [&](std::vector<float>& v, size_t n) {
      v.resize(n);
      for (float& x : v) x = normal(rng);
    };
    fill(expand, hidden * cin);
    fill(expand_bias, hidden);
    fill(dw, hidden * 9);
    fill(dw_bias, hidden);
    fill(project, cout * hidden);
    fill(project_bias, cout);
    arrays["b.expand.weight"] = {expand.data(), {hidden, cin}};
    arrays["b.expand.bias"] = {expand_bias.data(), {hidden}};
    arrays["b.depthwise.weight"] = {dw.data(), {hidden, 3, 3}};
    arrays["b.depthwise.bias"] = {dw_bias.data(), {hidden}};
    arrays["b.project.weight"] = {project.data(), {cout, hidden}};
    arrays["b.project.bias"] = {project_bias.data(), {cout}};
  }
};

// produce_rows with room for runs writes what produce writes row by row, for
// runs of every length up to 9 rows of 7 and 14 pixels and slices from a
// channel panel on: with the AMX kernels where the CPU has them (the 32-row
// blocks runs exist for), else the reference bf16 ones.
void check_runs(const mbv2::KernelSet& ks) {
  for (size_t w : {7, 14}) {
    const mbv2::BlockSpec spec{24, 6, 32, 1};
    const size_t hidden = spec.hidden(), rows = 9;
    const Weights weights(spec.cin, hidden, spec.cout, unsigned(w));
    const mbv2::PackedBlock block = mbv2::pack_block(weights.arrays, "b.", spec, ks);
    std::vector<float> in(rows * w * spec.cin);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-1.0f, 6.0f);
    for (float& x : in) x = uniform(rng);
    std::vector<float> runs(rows * w * hidden);
    const mbv2::TensorSource batched(ks, block, in.data(), w, runs.data()), single(ks, block, in.data(), w);
    for (size_t c0 : {size_t(0), ks.expand.nr}) {
      const size_t channels = hidden - c0;
      for (size_t first = 0; first < rows; first++) {
        for (size_t n = 1; first + n <= rows; n++) {
          std::vector<float> got(n * (w + 2) * channels, -1.0f), want(got);
          std::vector<float*> dsts(n);
          for (size_t k = 0; k < n; k++) dsts[k] = got.data() + k * (w + 2) * channels;
          batched.produce_rows(first, n, c0, channels, dsts.data());
          for (size_t k = 0; k < n; k++) single.produce(first + k, c0, channels, want.data() + k * (w + 2) * channels);
          ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
              << ks.isa << ": w " << w << ", c0 " << c0 << ", rows " << first << " + " << n;
        }
      }
    }
  }
}

TEST(ExpandRuns, OneGemmWritesWhatRowAtATimeWrites) {
  const std::vector<std::string> isas = mbv2::available_bf16_isas();
  const bool amx = std::find(isas.begin(), isas.end(), "amx") != isas.end();
  mbv2::KernelSet ks = mbv2::select_bf16_kernels(amx ? "amx" : "ref");
  if (!amx) ks.expand_block_rows = 32;  // runs do not depend on the kernel computing them
  check_runs(ks);
}

TEST(ExpandRuns, OnlyShortTiledRowsOnKernelsWithRowBlocks) {
  const mbv2::KernelSet ref = mbv2::select_bf16_kernels("ref");
  mbv2::KernelSet blocks = ref;
  blocks.expand_block_rows = 32;
  const mbv2::BlockSpec expand{96, 6, 96, 1}, copy{32, 1, 16, 1};
  EXPECT_TRUE(mbv2::block_geometry(expand, 14, 14, blocks).expand_runs);
  EXPECT_TRUE(mbv2::block_geometry(expand, 7, 7, blocks).expand_runs);
  EXPECT_FALSE(mbv2::block_geometry(expand, 28, 28, blocks).expand_runs);    // half a block or more per row
  EXPECT_FALSE(mbv2::block_geometry(expand, 112, 112, blocks).expand_runs);  // wide rows: one at a time
  EXPECT_FALSE(mbv2::block_geometry(copy, 14, 14, blocks).expand_runs);      // no expand conv
  EXPECT_FALSE(mbv2::block_geometry(expand, 14, 14, ref).expand_runs);
}

}  // namespace

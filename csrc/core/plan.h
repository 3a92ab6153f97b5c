// Everything that depends on the input size, computed once per (H, W): layer
// shapes, pads, work, chosen kernels, chunk sizes and the arena layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/common.h"
#include "core/kernel_set.h"
#include "core/tiling.h"

namespace mbv2 {

// A layer's shapes (core/network.h) and how the engine runs it.
struct LayerPlan : LayerShape {
  size_t chunk = 0;  // hidden channels per depthwise -> project step; 0 without a hidden dimension
  std::vector<std::string> kernels;
};

// Offsets in floats into one arena. Block i writes its output to y when i is
// even and to x when odd, so x first holds the image and is free again by the
// time block 1 writes; the head reads the last block's output from there.
// Each member of a thread team then has its own scratch region: a ring, a
// depthwise tile and the expand runs' rows (tiling.h, run_floats), at
// scratch + member * member_stride + ring (or tile, runs).
// The hidden Dense layers' outputs follow the pooled vector, each at
// dense + dense_offsets[j].
struct ArenaLayout {
  size_t x = 0, y = 0, pooled = 0, dense = 0;  // shared by the team
  std::vector<size_t> dense_offsets;
  size_t scratch = 0, members = 1, member_stride = 0, ring = 0, tile = 0, runs = 0;
  size_t total = 0;
};

// An int8 plan's byte arena (core/int8_network.h), in bytes from the arena's
// start; the float32 parts (the image at x, pooled, the Dense layers) stay in
// ArenaLayout. Block i writes its uint8 output at `even` when i is even, else
// at `odd`. Each team member's scratch is at scratch + member * member_stride,
// holding its ring, depthwise tile, expand runs' rows (AMX), one float32 stem
// row, and the head's uint8 rows and int32 channel sums.
struct Int8Arena {
  size_t even = 0, odd = 0;
  size_t scratch = 0, member_stride = 0;
  size_t ring = 0, tile = 0, runs = 0, stem_row = 0, head_rows = 0, head_sums = 0;
};

// One step of an image: ThreadPool::run runs a step's shares at once, and a
// step starts when the one before it is done.
struct Step {
  enum Kind { kLoad, kBlock, kAddHalves, kHead, kDense } kind;
  size_t index = 0;  // the block (kBlock, kAddHalves) or Dense layer (kDense: hidden j, the classifier last)
};

struct Plan {
  size_t height = 0, width = 0;
  std::vector<BlockGeometry> blocks;
  // Load, each block (followed by kAddHalves where BlockGeometry::half is
  // set), head, the hidden Dense layers, classifier.
  std::vector<Step> steps;
  std::vector<LayerPlan> layers;  // stem, blocks, head, hidden layers, classifier
  ArenaLayout arena;
  size_t threads = 1;                 // members of the team the arena is laid out for
  size_t arena_bytes = 0;             // everything but the ring buffers
  size_t ring_bytes = 0;              // one ring buffer per thread, each for the widest block
  size_t largest_expanded_bytes = 0;  // the largest expanded tensor an unfused engine stores
  size_t unfused_live_bytes = 0;      // most bytes live at once in a layer-by-layer engine
  bool int8 = false;                  // an int8 network's plan: blocks and head run from `q`
  Int8Arena q;
};

// Where a halved block's second half sums, in floats from the start of its
// output (in x or y): right after the output itself, which the arena leaves
// room for, so the 7x7 blocks' partial sums cost no arena of their own.
size_t partial_offset(const BlockGeometry& g, size_t cout);

Plan make_plan(const NetworkSpec& spec, const KernelSet& ks, size_t height, size_t width, size_t threads);

}  // namespace mbv2

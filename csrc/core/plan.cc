#include "core/plan.h"

#include <algorithm>
#include <utility>

#include "core/input.h"

namespace mbv2 {
namespace {

// Keeps every region on its own 64-byte line, as the arena itself is.
size_t align16(size_t floats) { return (floats + 15) / 16 * 16; }

LayerPlan layer_plan(const LayerShape& shape, size_t chunk, std::vector<std::string> kernels) {
  LayerPlan layer;
  static_cast<LayerShape&>(layer) = shape;
  layer.chunk = chunk;
  layer.kernels = std::move(kernels);
  return layer;
}

std::vector<std::string> block_kernels(const BlockSpec& b, const KernelSet& ks) {
  std::vector<std::string> kernels;
  if (b.has_expand()) kernels.emplace_back(ks.expand.name);
  kernels.emplace_back(ks.dwconv(b.stride).name);
  kernels.emplace_back(ks.project.name);
  return kernels;
}

// Live floats of a layer-by-layer engine running block b: its input, the
// expanded and depthwise tensors, and its output all exist at the same moment.
size_t unfused_block_floats(const BlockSpec& b, const BlockGeometry& g) {
  const size_t expanded = b.has_expand() ? g.h * g.w * b.hidden() : 0;
  return g.h * g.w * b.cin + expanded + g.ho * g.wo * (b.hidden() + b.cout);
}

// The layers' shapes come from the network table (layer_shapes), the same
// code that mbv2_engine.arch.layer_shapes calls; the plan adds how each runs.
void plan_layers(const NetworkSpec& spec, const KernelSet& ks, Plan& plan) {
  const std::vector<LayerShape> shapes = layer_shapes(spec, plan.height, plan.width);
  plan.layers.push_back(layer_plan(shapes.front(), 0, {ks.stem.name}));
  plan.steps.push_back({Step::kLoad});
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    const LayerShape& shape = shapes[i + 1];
    plan.blocks.push_back(block_geometry(spec.blocks[i], shape.in_h, shape.in_w, ks));
    plan.layers.push_back(layer_plan(shape, plan.blocks.back().chunk, block_kernels(spec.blocks[i], ks)));
    plan.steps.push_back({Step::kBlock, i});
    if (plan.blocks.back().half) plan.steps.push_back({Step::kAddHalves, i});
  }
  plan.steps.push_back({Step::kHead});
  plan.layers.push_back(layer_plan(shapes[spec.blocks.size() + 1], 0, {ks.head.name}));
  for (size_t j = 0; j <= spec.hidden.size(); j++) {
    plan.steps.push_back({Step::kDense, j});
    plan.layers.push_back(layer_plan(shapes[spec.blocks.size() + 2 + j], 0, {ks.project.name}));
  }
}

void plan_arena(const NetworkSpec& spec, Plan& plan) {
  size_t x = padded_image_floats(plan.height, plan.width), y = 0, ring = 0, tile = 0, runs = 0;
  size_t expanded = 0, unfused = plan.height * plan.width * 3 + plan.blocks[0].h * plan.blocks[0].w * spec.stem;
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    const BlockSpec& b = spec.blocks[i];
    const BlockGeometry& g = plan.blocks[i];
    size_t& out = i % 2 == 0 ? y : x;
    out = std::max(out, g.half ? partial_offset(g, b.cout) + g.ho * g.wo * b.cout : g.ho * g.wo * b.cout);
    ring = std::max(ring, ring_floats(b, g));
    tile = std::max(tile, tile_floats(g));
    runs = std::max(runs, run_floats(b, g));
    expanded = std::max(expanded, b.has_expand() ? g.h * g.w * b.hidden() : 0);
    unfused = std::max(unfused, unfused_block_floats(b, g));
  }
  ArenaLayout& a = plan.arena;
  a.x = 0;
  a.y = a.x + align16(x);
  a.pooled = a.y + align16(y);
  a.members = plan.threads;
  a.tile = 0;
  a.ring = a.tile + align16(tile);
  a.runs = a.ring + align16(ring);
  a.member_stride = a.runs + align16(runs);
  a.dense = a.pooled + align16(spec.last);
  size_t dense = 0;
  for (const DenseSpec& d : spec.hidden) {
    a.dense_offsets.push_back(dense);
    dense += align16(d.units);
  }
  a.scratch = a.dense + dense;
  a.total = a.scratch + a.members * a.member_stride;
  plan.ring_bytes = a.members * align16(ring) * sizeof(float);
  plan.arena_bytes = a.total * sizeof(float) - plan.ring_bytes;
  plan.largest_expanded_bytes = expanded * sizeof(float);
  plan.unfused_live_bytes = unfused * sizeof(float);
}

}  // namespace

size_t partial_offset(const BlockGeometry& g, size_t cout) { return align16(g.ho * g.wo * cout); }

Plan make_plan(const NetworkSpec& spec, const KernelSet& ks, size_t height, size_t width, size_t threads) {
  Plan plan;
  plan.height = height;
  plan.width = width;
  plan.threads = threads;
  plan_layers(spec, ks, plan);
  plan_arena(spec, plan);
  return plan;
}

}  // namespace mbv2

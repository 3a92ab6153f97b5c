#include "core/int8_network.h"

#include <algorithm>

#include "core/input.h"
#include "core/ring.h"
#include "core/row_sources.h"
#include "core/status.h"
#include "core/tiling.h"

namespace mbv2 {
namespace {

// Channels of a stored uint8 pixel: rounded up to 4 bytes, so that every
// GEMM may read its A rows to kc rounded up to 4 (ukernels.h).
size_t qstride(size_t channels) { return (channels + 3) / 4 * 4; }
size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// The head runs this many pixels per GEMM call into a member's uint8 rows,
// whose sums then pool: the head's output never exists whole.
constexpr size_t kHeadRows = 16;

// Output rows of one int8 tile: rows of more than 14 pixels run one at a
// time (m = the row); shorter ones gather about kTilePixels pixels, so the
// late blocks' weights are read once per tile rather than once per row.
size_t int8_tile_rows(const BlockGeometry& g) {
  return g.wo > 14 ? 1 : std::min(g.ho, (kTilePixels + g.wo - 1) / g.wo);
}

// Block i's input and output tensors in the arena.
uint8_t* block_out(const Plan& plan, float* arena, size_t i) {
  return reinterpret_cast<uint8_t*>(arena) + (i % 2 == 0 ? plan.q.even : plan.q.odd);
}

char* member_scratch(const Plan& plan, float* arena, size_t member) {
  return reinterpret_cast<char*>(arena) + plan.q.scratch + member * plan.q.member_stride;
}

std::vector<std::string> int8_block_kernels(const BlockSpec& b, const QKernelSet& ks) {
  std::vector<std::string> kernels;
  if (b.has_expand()) kernels.emplace_back(ks.gemm.name);
  kernels.emplace_back(ks.dwconv(b.stride).name);
  kernels.emplace_back(ks.gemm.name);
  return kernels;
}

}  // namespace

Int8Network pack_int8_network(const ArrayMap& arrays, const NetworkSpec& spec, const std::string& int8_isa) {
  if (spec.quant.size() != quant_tensor_count(spec)) {
    throw Error(Status::kInvalidFormat, "an int8 network needs " + std::to_string(quant_tensor_count(spec)) +
                                            " quantized tensors, got " + std::to_string(spec.quant.size()));
  }
  Int8Network net;
  net.ks = select_qkernels(int8_isa);
  const QuantIndex q = quant_index(spec);
  net.stem_out = spec.quant[q.stem];
  net.head_out = spec.quant[q.head];
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    // A t = 1 block's depthwise input is its input, which has a zero point
    // only block 0's (the stem's ReLU6 output) is sure to be 0.
    if (i > 0 && !spec.blocks[i].has_expand()) {
      throw Error(Status::kInvalidFormat, "an int8 network has t = 1 only in block 0");
    }
    net.blocks.push_back(pack_qblock(arrays, "blocks." + std::to_string(i) + ".", spec.blocks[i], i, spec, net.ks));
  }
  net.head = pack_qconv(arrays, "head.", {spec.last, spec.blocks.back().cout}, net.blocks.back().out, net.head_out,
                        true, net.ks.gemm.nr, net.ks.gemm.kr);
  return net;
}

Plan make_int8_plan(const NetworkSpec& spec, const KernelSet& float_ks, const Int8Network& net, size_t height,
                    size_t width, size_t threads) {
  Plan plan = make_plan(spec, float_ks, height, width, threads);
  plan.int8 = true;
  plan.steps.erase(std::remove_if(plan.steps.begin(), plan.steps.end(),
                                  [](const Step& s) { return s.kind == Step::kAddHalves; }),
                   plan.steps.end());
  size_t out[2] = {0, 0}, ring = 0, tile = 0, runs = 0;
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    const BlockSpec& b = spec.blocks[i];
    BlockGeometry& g = plan.blocks[i];
    g.half = 0;
    g.tile_rows = int8_tile_rows(g);
    g.slice = g.chunk = b.hidden();
    g.expand_runs = expands_in_runs(b, g, net.ks.gemm_block_rows);
    plan.layers[i + 1].chunk = b.hidden();
    plan.layers[i + 1].kernels = int8_block_kernels(b, net.ks);
    out[i % 2] = std::max(out[i % 2], g.ho * g.wo * qstride(b.cout));
    ring = std::max(ring, ring_slots(g.tile_rows, b.stride) * (g.w + 2) * qstride(b.hidden()));
    tile = std::max(tile, g.tile_rows * g.wo * qstride(b.hidden()));
    if (g.expand_runs) runs = std::max(runs, ring_slots(g.tile_rows, b.stride) * g.w * qstride(b.hidden()));
  }
  plan.layers[0].kernels.emplace_back(net.ks.quantize.name);  // the float32 stem, then its uint8 output
  const size_t head = spec.blocks.size() + 1;
  plan.layers[head].kernels = {net.ks.gemm.name};
  // The image (float32) shares its region with the odd blocks' outputs:
  // block 0 has read it by the time block 1 writes. Then the float32 pooled
  // vector and Dense layers' outputs (the float plan's block outputs and
  // scratch are not needed), the even blocks' outputs and the scratch.
  ArenaLayout& a = plan.arena;
  const size_t dense = a.scratch - a.dense;
  const size_t shared = std::max(padded_image_floats(height, width), (out[1] + 3) / 4);
  a.x = a.y = 0;
  a.pooled = (shared + 15) / 16 * 16;
  a.dense = a.pooled + (spec.last + 15) / 16 * 16;
  a.scratch = a.dense + dense;
  Int8Arena& q = plan.q;
  q.odd = 0;
  q.even = align64(a.scratch * sizeof(float));
  q.scratch = q.even + align64(out[0]);
  q.ring = 0;
  q.tile = q.ring + align64(ring);
  q.runs = q.tile + align64(tile);
  q.stem_row = q.runs + align64(runs);
  q.head_rows = q.stem_row + align64(plan.blocks[0].w * spec.stem * sizeof(float));
  q.head_sums = q.head_rows + align64(kHeadRows * qstride(spec.last));
  q.member_stride = q.head_sums + align64(spec.last * sizeof(int32_t));
  const size_t total = q.scratch + a.members * q.member_stride;
  a.total = (total + sizeof(float) - 1) / sizeof(float);
  a.member_stride = a.ring = a.tile = 0;  // the float scratch is unused
  plan.ring_bytes = a.members * align64(ring);
  plan.arena_bytes = total - plan.ring_bytes;
  plan.largest_expanded_bytes /= sizeof(float);  // one byte an element
  plan.unfused_live_bytes /= sizeof(float);
  return plan;
}

void run_int8_block(const Plan& plan, const NetworkSpec& spec, const KernelSet& float_ks, const PackedConv& stem,
                    const Int8Network& net, float* arena, size_t i, Share share) {
  const BlockGeometry& g = plan.blocks[i];
  const PackedQBlock& block = net.blocks[i];
  const BlockSpec& b = block.spec;
  const auto [begin, end] = share.band(g.ho);
  if (begin >= end) return;
  char* mine = member_scratch(plan, arena, share.index);
  // The depthwise input rows under a tile: one slice of every hidden channel,
  // pixels qstride(hidden) bytes apart.
  Ring<uint8_t> ring(g, b.stride, reinterpret_cast<uint8_t*>(mine + plan.q.ring));
  ring.select_slice(0, qstride(b.hidden()));
  uint8_t* tile = reinterpret_cast<uint8_t*>(mine + plan.q.tile);
  const uint8_t* in = i > 0 ? block_out(plan, arena, i - 1) : nullptr;
  uint8_t* out = block_out(plan, arena, i);
  const size_t cin_s = qstride(b.cin), cout_s = qstride(b.cout), hs = ring.pixel_stride();

  const StemSource stem_rows(float_ks, stem, arena + plan.arena.x, plan.height, plan.width, spec.stem_pad);
  float* stem_row = reinterpret_cast<float*>(mine + plan.q.stem_row);
  // The stem's output (ReLU6 applied) quantized with its (scale, 0): the
  // ReLU6 top of any int8 conv's requantization (ukernels.h, quantize).
  const float stem_inv = static_cast<float>(1.0 / net.stem_out.scale);
  const float stem_hi = requant_for(net.stem_out, true).hi;
  // Rows first .. first + n - 1 of the expand conv, n * w pixels in one GEMM (the input rows are consecutive).
  auto expand = [&](size_t first, size_t n, uint8_t* dst) {
    const PackedQConv& e = block.expand;
    net.ks.gemm.fn(n * g.w, e.n, e.k, in + first * g.w * cin_s, cin_s, e.panel(0), e.panel_stride, &e.requant, dst,
                   hs);
  };
  auto produce = [&](size_t iy, uint8_t* dst) {
    if (i == 0) {  // t = 1: the stem's row is the depthwise input (Int8Network: block 0 only)
      stem_rows.produce(iy, 0, spec.stem, stem_row);
      if (hs == spec.stem) {  // the usual case (channels are multiples of 8): the whole row at once
        net.ks.quantize.fn(g.w * spec.stem, stem_row, stem_inv, stem_hi, dst);
        return;
      }
      for (size_t x = 0; x < g.w; x++) {
        net.ks.quantize.fn(spec.stem, stem_row + x * spec.stem, stem_inv, stem_hi, dst + x * hs);
      }
      return;
    }
    expand(iy, 1, dst);
  };
  // A run of consecutive rows in one GEMM where the geometry says so (expand_runs, as
  // TensorSource::produce_rows does for float blocks), into the member's run buffer, then
  // each row into its slot.
  uint8_t* runs = reinterpret_cast<uint8_t*>(mine + plan.q.runs);
  auto produce_rows = [&](size_t first, size_t n, uint8_t* const* dsts) {
    if (!g.expand_runs || n == 1) {
      for (size_t k = 0; k < n; k++) produce(first + k, dsts[k]);
      return;
    }
    expand(first, n, runs);
    for (size_t k = 0; k < n; k++) std::copy_n(runs + k * g.w * hs, g.w * hs, dsts[k]);
  };
  const auto& dw = net.ks.dwconv(b.stride);
  const PackedQConv& p = block.project;
  mbv2_qu8_requant rq = p.requant;
  for (size_t oy = begin; oy < end; oy += g.tile_rows) {
    const RowRange rows{oy, std::min(oy + g.tile_rows, end)};
    ring.fill_runs(rows, produce_rows);
    for (size_t y = rows.begin; y < rows.end; y++) {
      const uint8_t* taps[3] = {ring.tap_row(y, 0), ring.tap_row(y, 1), ring.tap_row(y, 2)};
      dw.fn(g.wo, b.hidden(), taps, hs, block.depthwise.panel(0), block.depthwise.panel_stride,
            &block.depthwise.requant, tile + (y - rows.begin) * g.wo * hs, hs);
    }
    if (b.residual()) {  // stride 1: output pixel (y, x) adds input pixel (y, x)
      rq.residual = in + oy * g.w * cin_s;
      rq.residual_stride = cin_s;
    }
    net.ks.gemm.fn((rows.end - rows.begin) * g.wo, p.n, p.k, tile, hs, p.panel(0), p.panel_stride, &rq,
                   out + oy * g.wo * cout_s, cout_s);
  }
}

void run_int8_head(const Plan& plan, const Int8Network& net, float* arena, Share share) {
  const PackedQConv& head = net.head;
  const BlockGeometry& last = plan.blocks.back();
  const size_t pixels = last.ho * last.wo, cin_s = qstride(head.k), row_stride = qstride(head.n);
  const uint8_t* in = block_out(plan, arena, plan.blocks.size() - 1);
  char* mine = member_scratch(plan, arena, share.index);
  uint8_t* rows = reinterpret_cast<uint8_t*>(mine + plan.q.head_rows);
  int32_t* sums = reinterpret_cast<int32_t*>(mine + plan.q.head_sums);
  float* pooled = arena + plan.arena.pooled;
  const float pool_scale = static_cast<float>(static_cast<double>(net.head_out.scale) / pixels);
  share.claim((head.n + head.nr - 1) / head.nr, [&](size_t p0, size_t p1) {
    const size_t n0 = p0 * head.nr, nc = std::min(p1 * head.nr, head.n) - n0;
    std::fill_n(sums + n0, nc, 0);
    for (size_t px = 0; px < pixels; px += kHeadRows) {
      const size_t m = std::min(kHeadRows, pixels - px);
      net.ks.gemm.fn(m, nc, head.k, in + px * cin_s, cin_s, head.panel(p0), head.panel_stride, &head.requant, rows,
                     row_stride);
      for (size_t r = 0; r < m; r++) {
        for (size_t n = 0; n < nc; n++) sums[n0 + n] += rows[r * row_stride + n];
      }
    }
    for (size_t n = 0; n < nc; n++) pooled[n0 + n] = static_cast<float>(sums[n0 + n]) * pool_scale;
  });
}

}  // namespace mbv2

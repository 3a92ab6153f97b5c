#include "core/model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <limits>
#include <set>

#include "core/fused_block.h"
#include "core/head.h"
#include "core/input.h"
#include "core/row_sources.h"
#include "core/status.h"

namespace mbv2 {
namespace {

// Plans are small, but a server fed arbitrary sizes must not grow without bound.
constexpr size_t kMaxCachedPlans = 32;

void check_spec(const NetworkSpec& spec, size_t threads) {
  // A network the core cannot run is a format problem of whatever described it.
  auto fail = [](const std::string& what) { throw Error(Status::kInvalidFormat, what); };
  if (spec.blocks.empty()) fail("the network needs at least one block");
  if (spec.stem == 0 || spec.last == 0 || spec.num_classes == 0) fail("stem, last and num_classes must be >= 1");
  if (threads == 0 || threads > kMaxThreads) {
    throw Error(Status::kInvalidArgument, "threads must be between 1 and " + std::to_string(kMaxThreads) + ", got " +
                                              std::to_string(threads));
  }
  size_t cin = spec.stem;
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    const BlockSpec& b = spec.blocks[i];
    const std::string name = "block " + std::to_string(i);
    if (b.cin != cin) fail(name + " has cin " + std::to_string(b.cin) + ", expected " + std::to_string(cin));
    if (b.t == 0 || b.cout == 0) fail(name + " needs t >= 1 and cout >= 1");
    if (b.stride != 1 && b.stride != 2) fail(name + " has stride " + std::to_string(b.stride) + ", expected 1 or 2");
    cin = b.cout;
  }
  for (const DenseSpec& d : spec.hidden) {
    if (d.units == 0) fail("every hidden layer needs units >= 1");
  }
  // Stem fusion feeds block 0's ring straight from the stem conv, so the stem
  // output must be its depthwise input and is never available as a residual.
  if (spec.blocks[0].t != 1 || spec.blocks[0].residual()) fail("block 0 must have t = 1 and no residual");
}

// The float32 kernels of `isa`, its bf16 ones, or an int8 network's float32
// kernels for its stem and classifier (float_isa_for).
KernelSet kernels_for(const NetworkSpec& spec, const std::string& isa, const std::string& dtype) {
  if (dtype != "float32" && dtype != "bf16") {
    throw Error(Status::kInvalidArgument, "dtype must be 'float32' or 'bf16', got '" + dtype + "'");
  }
  if (spec.int8()) {
    if (dtype != "float32") {
      throw Error(Status::kInvalidArgument, "this is an int8 file: it runs in int8, not " + dtype +
                                                " (load its float32 original for bf16)");
    }
    return select_kernels(float_isa_for(select_qkernels(isa).isa));
  }
  return dtype == "bf16" ? select_bf16_kernels(isa) : select_kernels(isa);
}

void check_no_extra_arrays(const ArrayMap& arrays, const NetworkSpec& spec) {
  std::set<std::string> expected;
  for (const auto& member : member_shapes(spec)) expected.insert(member.first);
  for (const auto& entry : arrays) {
    if (!expected.count(entry.first)) throw Error(Status::kInvalidFormat, "unexpected array '" + entry.first + "'");
  }
}

[[noreturn]] void throw_non_finite(const float* x, size_t n) {
  throw Error(Status::kInvalidArgument,
              "the input holds " + std::to_string(count_non_finite(x, n)) + " NaN or infinite values");
}

// Block i reads from x (odd i: y) and writes to y (odd i: x); block 0 reads the image in x.
float* block_out(const Plan& plan, float* arena, size_t i) {
  return arena + (i % 2 == 0 ? plan.arena.y : plan.arena.x);
}

// Where a halved block's second half sums (partial_offset).
float* partial_out(const Plan& plan, float* arena, size_t i, size_t cout) {
  return block_out(plan, arena, i) + partial_offset(plan.blocks[i], cout);
}

}  // namespace

void check_input_size(size_t n, size_t height, size_t width) {
  if (n == 0) throw Error(Status::kInvalidArgument, "batch is empty (N = 0)");
  for (size_t side : {height, width}) {
    if (side < kMinInputSide || side > kMaxInputSide) {
      throw Error(Status::kInvalidArgument, "input is " + std::to_string(height) + "x" + std::to_string(width) +
                                                "; each side must be between " + std::to_string(kMinInputSide) +
                                                " and " + std::to_string(kMaxInputSide));
    }
  }
  // By division: n * 3 * height * width itself could wrap for a huge n (the C API takes n as given).
  if (n > kMaxBatchFloats / (3 * height * width)) {
    throw Error(Status::kInvalidArgument, "a batch of " + std::to_string(n) + " images of " + std::to_string(height) +
                                              "x" + std::to_string(width) + " holds more than " +
                                              std::to_string(kMaxBatchFloats) + " floats, the most one run takes");
  }
}

// An arena taken from the idle pool (or made) for one run() call, and given back after.
class Model::ArenaLease {
 public:
  ArenaLease(const Model& model, size_t floats) : model_(model) {
    {
      std::lock_guard<std::mutex> lock(model_.mutex_);
      if (!model_.idle_arenas_.empty()) {
        buffer_ = std::move(model_.idle_arenas_.back());
        model_.idle_arenas_.pop_back();
      }
    }
    if (!buffer_ || buffer_->size() < floats) buffer_ = std::make_unique<AlignedBuffer>(floats);
  }
  ~ArenaLease() {
    std::lock_guard<std::mutex> lock(model_.mutex_);
    model_.idle_arenas_.push_back(std::move(buffer_));
  }
  ArenaLease(const ArenaLease&) = delete;
  ArenaLease& operator=(const ArenaLease&) = delete;
  float* data() const { return buffer_->data(); }

 private:
  const Model& model_;
  std::unique_ptr<AlignedBuffer> buffer_;
};

Model::Model(const ArrayMap& arrays, NetworkSpec spec, const std::string& isa, size_t threads,
             const std::string& dtype)
    : spec_(std::move(spec)), ks_(kernels_for(spec_, isa, dtype)), threads_(threads) {
  check_spec(spec_, threads_);
  check_no_extra_arrays(arrays, spec_);
  stem_ = pack_conv(arrays, "stem.", {spec_.stem, 3, 3, 3}, ks_.stem.nr, true);
  if (spec_.int8()) {
    int8_ = std::make_unique<Int8Network>(pack_int8_network(arrays, spec_, isa));
  } else {
    for (size_t i = 0; i < spec_.blocks.size(); i++) {
      blocks_.push_back(pack_block(arrays, "blocks." + std::to_string(i) + ".", spec_.blocks[i], ks_));
    }
    head_ = pack_conv(arrays, "head.", {spec_.last, spec_.blocks.back().cout}, ks_.head.nr, true, ks_.bf16);
  }
  size_t inputs = spec_.last;
  for (size_t j = 0; j < spec_.hidden.size(); j++) {
    dense_.push_back(pack_conv(arrays, "hidden." + std::to_string(j) + ".", {spec_.hidden[j].units, inputs},
                               ks_.project.nr, false, ks_.bf16));
    inputs = spec_.hidden[j].units;
  }
  dense_.push_back(pack_conv(arrays, "classifier.", {spec_.num_classes, inputs}, ks_.project.nr, false, ks_.bf16));
  if (threads_ > 1) pool_ = std::make_unique<ThreadPool>(threads_);
}

std::shared_ptr<const Plan> Model::plan(size_t height, size_t width) const {
  check_input_size(1, height, width);
  const auto key = std::make_pair(height, width);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
  }
  auto plan = std::make_shared<const Plan>(int8_ ? make_int8_plan(spec_, ks_, *int8_, height, width, threads_)
                                                 : make_plan(spec_, ks_, height, width, threads_));
  std::lock_guard<std::mutex> lock(mutex_);
  if (plans_.size() >= kMaxCachedPlans) plans_.erase(plans_.begin());
  return plans_.emplace(key, std::move(plan)).first->second;
}

void Model::run(const float* x, size_t n, size_t height, size_t width, Layout layout, float* out) const {
  check_input_size(n, height, width);
  const auto plan = this->plan(height, width);
  std::atomic<bool> non_finite{false};
  run_batch(*plan, x, n, layout, out, non_finite);
  if (non_finite.load()) throw_non_finite(x, n * 3 * height * width);
}

// Threading (measured on the 2-core Xeon, 224x224, width 1.0; see README):
// a batch is split by whole images (in pairs, see run_image_pair), each team
// member with its own arenas, so members never wait for each other; a single
// image (and the images left over) runs as steps (Plan::steps) split into
// shares: output rows per block (halves of the hidden channels for the blocks
// BlockGeometry::half names), output channels for the head and the
// classifier. Image rows, wide blocks' rows and the head's and classifier's
// channels are claimed item by item (Share::claim), so a faster thread takes
// over part of a slower one's band; the tiles of the 14x14 blocks go in fixed
// bands, whose edges recompute the 2 halo input rows of the expand conv.
// Whoever computes an output row or channel, it is the same sum in the same
// order: results never depend on the split.
void Model::run_batch(const Plan& plan, const float* x, size_t n, Layout layout, float* out,
                      std::atomic<bool>& non_finite) const {
  const size_t image_floats = 3 * plan.height * plan.width;
  auto image = [&](size_t i, float* arena) {
    return ImageJob{x + i * image_floats, layout, arena, out + i * spec_.num_classes, &non_finite};
  };
  std::unique_lock<std::mutex> pool_lock(pool_mutex_, std::defer_lock);
  if (!pool_ || !pool_lock.try_lock()) {
    ArenaLease first(*this, plan.arena.total);
    if (n % 2 == 1) run_image(plan, image(n - 1, first.data()));
    if (n == 1) return;
    ArenaLease second(*this, plan.arena.total);
    for (size_t i = 0; i + 1 < n; i += 2) {
      run_image_pair(plan, image(i, first.data()), image(i + 1, second.data()));
    }
    return;
  }
  const size_t members = pool_->size(), whole_rounds = n / members * members;
  if (whole_rounds > 0) {
    // Images are claimed in pairs where every member gets the same number of
    // pairs (batch 8 on 2 threads), else one at a time (batch 2 or 6 on 2), so
    // no member idles while another runs a pair. Claiming as it goes, a member
    // the OS descheduled (the machines are shared) holds up one claim, not a
    // fixed share of the batch. The arenas are leased here: an allocation
    // failure must throw on the caller's thread, not end a worker's.
    const size_t claim = whole_rounds % (2 * members) == 0 ? 2 : 1;
    std::deque<ArenaLease> arenas;
    for (size_t k = 0; k < claim * members; k++) arenas.emplace_back(*this, plan.arena.total);
    std::atomic<size_t> next{0};
    pool_->run(1, [&](size_t, Share share) {
      float* first = arenas[claim * share.index].data();
      for (size_t i; (i = next.fetch_add(claim, std::memory_order_relaxed)) < whole_rounds;) {
        if (claim == 1) {
          run_image(plan, image(i, first));
        } else {
          run_image_pair(plan, image(i, first), image(i + 1, arenas[2 * share.index + 1].data()));
        }
      }
    });
  }
  if (whole_rounds == n) return;
  ArenaLease arena(*this, plan.arena.total);
  for (size_t i = whole_rounds; i < n; i++) {
    const ImageJob job = image(i, arena.data());
    pool_->run(plan.steps.size(), [&](size_t step, Share share) { run_step(plan, job, step, share); });
  }
}

std::vector<double> Model::profile(const float* x, size_t height, size_t width, Layout layout,
                                  size_t repeats) const {
  check_input_size(1, height, width);
  const auto plan = this->plan(height, width);
  ArenaLease arena(*this, plan->arena.total);
  std::vector<float> logits(spec_.num_classes);
  const size_t blocks = spec_.blocks.size();
  std::vector<double> best(blocks, 1e30), steps;
  std::atomic<bool> non_finite{false};
  for (size_t r = 0; r < std::max<size_t>(repeats, 1); r++) {
    run_image(*plan, ImageJob{x, layout, arena.data(), logits.data(), &non_finite}, &steps);
    if (non_finite.load()) throw_non_finite(x, 3 * height * width);
    // Loading the image counts to block 0 (the stem's), head and classifier to the last block.
    std::vector<double> per_block(blocks, 0.0);
    for (size_t s = 0; s < steps.size(); s++) {
      const Step& step = plan->steps[s];
      const bool last = step.kind == Step::kHead || step.kind == Step::kDense;
      per_block[last ? blocks - 1 : step.index] += steps[s];
    }
    for (size_t i = 0; i < best.size(); i++) best[i] = std::min(best[i], per_block[i]);
  }
  return best;
}

// Block by block, so each block's weights come from memory once for both
// images: at batch 8 on 2 threads, 0.86-0.87x the best peer's time against
// 0.88x image by image (interleaved runs); the late blocks' megabytes of
// weights dominate there. At 1 thread the difference is within the noise.
void Model::run_image_pair(const Plan& plan, const ImageJob& a, const ImageJob& b) const {
  for (size_t step = 0; step < plan.steps.size(); step++) {
    run_step(plan, a, step, Share{});
    run_step(plan, b, step, Share{});
  }
}

void Model::run_image(const Plan& plan, const ImageJob& job, std::vector<double>* step_seconds) const {
  using Clock = std::chrono::steady_clock;
  if (step_seconds) step_seconds->clear();
  for (size_t step = 0; step < plan.steps.size(); step++) {
    if (!step_seconds) {
      run_step(plan, job, step, Share{});
      continue;
    }
    const auto start = Clock::now();
    run_step(plan, job, step, Share{});
    step_seconds->push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
}

void Model::run_step(const Plan& plan, const ImageJob& job, size_t step, Share share) const {
  const Step& s = plan.steps[step];
  switch (s.kind) {
    case Step::kLoad: return run_load(plan, job, share);
    case Step::kBlock:
      if (int8_) return run_int8_block(plan, spec_, ks_, stem_, *int8_, job.arena, s.index, share);
      return run_block(plan, job, s.index, share);
    case Step::kAddHalves: return run_add_halves(plan, job, s.index, share);
    case Step::kHead: return int8_ ? run_int8_head(plan, *int8_, job.arena, share) : run_head(plan, job, share);
    case Step::kDense: return run_dense(plan, job, s.index, share);
  }
}

void Model::run_load(const Plan& plan, const ImageJob& job, Share share) const {
  share.claim(plan.height, [&](size_t y0, size_t y1) {
    if (!load_padded_image(ks_.load.fn, job.x, job.layout, plan.height, plan.width, y0, y1, job.arena + plan.arena.x)) {
      job.non_finite->store(true, std::memory_order_relaxed);
    }
  });
}

void Model::run_block(const Plan& plan, const ImageJob& job, size_t i, Share share) const {
  const ArenaLayout& a = plan.arena;
  float* arena = job.arena;
  const BlockGeometry& g = plan.blocks[i];
  const PackedBlock& block = blocks_[i];
  float* mine = arena + a.scratch + share.index * a.member_stride;
  const BlockScratch scratch{mine + a.ring, mine + a.tile};
  const StemSource stem(ks_, stem_, arena + a.x, plan.height, plan.width, spec_.stem_pad);
  const TensorSource tensor(ks_, block, i > 0 ? block_out(plan, arena, i - 1) : nullptr, g.w,
                            g.expand_runs ? mine + a.runs : nullptr);
  const RowSource& source = i == 0 ? static_cast<const RowSource&>(stem) : tensor;
  const float* residual = block.spec.residual() ? block_out(plan, arena, i - 1) : nullptr;
  auto fused = [&](ChannelRange hidden, float* out) {
    return FusedBlock(ks_, block, g, source, residual, out, scratch, hidden);
  };
  const size_t hidden = block.spec.hidden();
  if (g.half) {
    // Halves: the first onto bias and residual, the second into the partial sum.
    if (share.index == 0) fused({0, g.half}, block_out(plan, arena, i)).run({0, g.ho});
    if (share.index == 1 || share.count == 1) {
      fused({g.half, hidden}, partial_out(plan, arena, i, block.spec.cout)).run({0, g.ho});
    }
    return;
  }
  FusedBlock rows = fused({0, hidden}, block_out(plan, arena, i));
  if (g.banded) {
    const auto [begin, end] = share.band(g.ho);
    if (begin < end) rows.run({begin, end});
    return;
  }
  // Wide rows: whole tiles claimed, so the depthwise keeps its row pairs.
  share.claim((g.ho + g.tile_rows - 1) / g.tile_rows, [&](size_t t0, size_t t1) {
    rows.run({t0 * g.tile_rows, std::min(t1 * g.tile_rows, g.ho)});
  });
}

void Model::run_add_halves(const Plan& plan, const ImageJob& job, size_t i, Share share) const {
  const BlockGeometry& g = plan.blocks[i];
  const auto [begin, end] = share.band(g.ho * g.wo * blocks_[i].spec.cout, 16);
  add_partial(partial_out(plan, job.arena, i, blocks_[i].spec.cout), begin, end, block_out(plan, job.arena, i));
}

// The head and the classifier are split by output channel: each share
// streams its part of their 1.6 MB and 5 MB of weights.
void Model::run_head(const Plan& plan, const ImageJob& job, Share share) const {
  const BlockGeometry& last = plan.blocks.back();
  share.claim((head_.n + head_.nr - 1) / head_.nr, [&](size_t p0, size_t p1) {
    head_pool(ks_, head_, block_out(plan, job.arena, blocks_.size() - 1), last.ho * last.wo, p0 * head_.nr,
              std::min(p1 * head_.nr, head_.n), job.arena + plan.arena.pooled);
  });
}

void Model::run_dense(const Plan& plan, const ImageJob& job, size_t j, Share share) const {
  const ArenaLayout& a = plan.arena;
  const PackedConv& fc = dense_[j];
  const bool classifier = j == spec_.hidden.size();
  const float* in = job.arena + (j == 0 ? a.pooled : a.dense + a.dense_offsets[j - 1]);
  float* out = classifier ? job.logits : job.arena + a.dense + a.dense_offsets[j];
  const Activation act = classifier ? Activation::kNone : spec_.hidden[j].activation;
  share.claim((fc.n + fc.nr - 1) / fc.nr, [&](size_t p0, size_t p1) {
    const size_t n0 = p0 * fc.nr, n1 = std::min(p1 * fc.nr, fc.n);
    ks_.project.fn(1, n1 - n0, fc.k, in, fc.k, fc.panels.data() + p0 * fc.panel_stride, fc.panel_stride,
                   fc.bias.data() + n0, nullptr, out + n0, fc.n);
    if (act == Activation::kNone) return;
    const float top = act == Activation::kRelu6 ? 6.0f : std::numeric_limits<float>::infinity();
    for (size_t n = n0; n < n1; n++) out[n] = std::min(std::max(out[n], 0.0f), top);
  });
}

}  // namespace mbv2

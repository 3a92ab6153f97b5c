#include "core/model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>

#include "core/fused_block.h"

namespace mbv2 {
namespace {

// Plans are small, but a server fed arbitrary sizes must not grow without bound.
constexpr size_t kMaxCachedPlans = 32;

void check_spec(const NetworkSpec& spec, size_t threads) {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (spec.blocks.empty()) fail("the network needs at least one block");
  if (spec.stem == 0 || spec.last == 0 || spec.num_classes == 0) fail("stem, last and num_classes must be >= 1");
  if (threads == 0) fail("threads must be >= 1");
  size_t cin = spec.stem;
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    const BlockSpec& b = spec.blocks[i];
    const std::string name = "block " + std::to_string(i);
    if (b.cin != cin) fail(name + " has cin " + std::to_string(b.cin) + ", expected " + std::to_string(cin));
    if (b.t == 0 || b.cout == 0) fail(name + " needs t >= 1 and cout >= 1");
    if (b.stride != 1 && b.stride != 2) fail(name + " has stride " + std::to_string(b.stride) + ", expected 1 or 2");
    cin = b.cout;
  }
  // Stem fusion feeds block 0's ring straight from the stem conv, so the stem
  // output must be its depthwise input and is never available as a residual.
  if (spec.blocks[0].t != 1 || spec.blocks[0].residual()) fail("block 0 must have t = 1 and no residual");
}

std::set<std::string> expected_names(const NetworkSpec& spec) {
  std::set<std::string> names = {"stem.weight", "stem.bias", "head.weight", "head.bias", "classifier.weight",
                                 "classifier.bias"};
  for (size_t i = 0; i < spec.blocks.size(); i++) {
    std::vector<std::string> convs = {"depthwise.", "project."};
    if (spec.blocks[i].has_expand()) convs.emplace_back("expand.");
    for (const auto& conv : convs) {
      names.insert("blocks." + std::to_string(i) + "." + conv + "weight");
      names.insert("blocks." + std::to_string(i) + "." + conv + "bias");
    }
  }
  return names;
}

void check_no_extra_arrays(const ArrayMap& arrays, const NetworkSpec& spec) {
  const auto expected = expected_names(spec);
  for (const auto& entry : arrays) {
    if (!expected.count(entry.first)) throw std::invalid_argument("unexpected array '" + entry.first + "'");
  }
}

}  // namespace

void check_input_size(size_t n, size_t height, size_t width) {
  if (n == 0) throw std::invalid_argument("batch is empty (N = 0)");
  for (size_t side : {height, width}) {
    if (side < kMinInputSide || side > kMaxInputSide) {
      throw std::invalid_argument("input is " + std::to_string(height) + "x" + std::to_string(width) +
                                  "; each side must be between " + std::to_string(kMinInputSide) + " and " +
                                  std::to_string(kMaxInputSide));
    }
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

Model::Model(const ArrayMap& arrays, NetworkSpec spec, const std::string& isa, size_t threads)
    : spec_(std::move(spec)), ks_(select_kernels(isa)), threads_(threads) {
  check_spec(spec_, threads_);
  check_no_extra_arrays(arrays, spec_);
  stem_ = pack_conv(arrays, "stem.", {spec_.stem, 3, 3, 3}, ks_.stem.nr, true);
  for (size_t i = 0; i < spec_.blocks.size(); i++) {
    blocks_.push_back(pack_block(arrays, "blocks." + std::to_string(i) + ".", spec_.blocks[i], ks_));
  }
  head_ = pack_conv(arrays, "head.", {spec_.last, spec_.blocks.back().cout}, ks_.head.nr, true);
  classifier_ = pack_conv(arrays, "classifier.", {spec_.num_classes, spec_.last}, ks_.project.nr, false);
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
  auto plan = std::make_shared<const Plan>(make_plan(spec_, ks_, height, width, threads_));
  std::lock_guard<std::mutex> lock(mutex_);
  if (plans_.size() >= kMaxCachedPlans) plans_.erase(plans_.begin());
  return plans_.emplace(key, std::move(plan)).first->second;
}

// Threading (measured on the 2-core Xeon, 224x224, width 1.0; see README):
// a batch is split by whole images, each team member with its own arena, so
// no barrier is ever needed; a single image (and the images left over) is split
// into bands of output rows per block, members meeting at a barrier after each
// block. Bands recompute the 2 halo input rows of the expand conv: about 9% more
// work at 2 threads, mostly in the 14x14 and 7x7 blocks.
void Model::run(const float* x, size_t n, size_t height, size_t width, Layout layout, float* out) const {
  check_input_size(n, height, width);
  const auto plan = this->plan(height, width);
  const size_t image_floats = 3 * height * width;
  std::unique_lock<std::mutex> pool_lock(pool_mutex_, std::defer_lock);
  if (!pool_ || !pool_lock.try_lock()) {
    ArenaLease arena(*this, plan->arena.total);
    for (size_t i = 0; i < n; i++) {
      run_image(*plan, x + i * image_floats, layout, arena.data(), out + i * spec_.num_classes, Team{});
    }
    return;
  }
  const size_t members = pool_->size(), whole_rounds = n / members * members;
  if (whole_rounds > 0) {
    // Images are claimed one at a time, so a member the OS descheduled (the
    // machines are shared) holds up one image, not a fixed share of the batch.
    std::atomic<size_t> next{0};
    pool_->run([&](size_t) {
      ArenaLease arena(*this, plan->arena.total);
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < whole_rounds;) {
        run_image(*plan, x + i * image_floats, layout, arena.data(), out + i * spec_.num_classes, Team{});
      }
    });
  }
  if (whole_rounds == n) return;
  ArenaLease arena(*this, plan->arena.total);
  for (size_t i = whole_rounds; i < n; i++) {
    pool_->run([&](size_t member) {
      run_image(*plan, x + i * image_floats, layout, arena.data(), out + i * spec_.num_classes,
                Team{member, members, pool_.get()});
    });
  }
}

std::vector<double> Model::profile(const float* x, size_t height, size_t width, Layout layout,
                                  size_t repeats) const {
  check_input_size(1, height, width);
  const auto plan = this->plan(height, width);
  ArenaLease arena(*this, plan->arena.total);
  std::vector<float> logits(spec_.num_classes);
  std::vector<double> best(blocks_.size(), 1e30), seconds;
  for (size_t r = 0; r < std::max<size_t>(repeats, 1); r++) {
    run_image(*plan, x, layout, arena.data(), logits.data(), Team{}, &seconds);
    for (size_t i = 0; i < best.size(); i++) best[i] = std::min(best[i], seconds[i]);
  }
  return best;
}

void Model::run_image(const Plan& plan, const float* x, Layout layout, float* arena, float* logits,
                      const Team& team, std::vector<double>* block_seconds) const {
  using Clock = std::chrono::steady_clock;
  if (block_seconds) block_seconds->clear();
  auto start = Clock::now();
  const ArenaLayout& a = plan.arena;
  if (team.member == 0) load_padded_image(x, layout, plan.height, plan.width, arena + a.x);
  team.barrier();
  float* mine = arena + a.scratch + team.member * a.member_stride;
  const BlockScratch scratch{mine + a.ring, mine + a.tile};
  const StemSource stem(ks_, stem_, arena + a.x, plan.height, plan.width, spec_.padding);
  const BlockGeometry& last = plan.blocks.back();
  HeadSink head(ks_, head_, mine + a.head_rows, last.ho, last.wo, arena + a.head_sums);
  const float* in = nullptr;
  for (size_t i = 0; i < blocks_.size(); i++) {
    const BlockGeometry& g = plan.blocks[i];
    float* out = arena + (i % 2 == 0 ? a.y : a.x);
    TensorSink tensor(out, g.wo * spec_.blocks[i].cout);
    const bool last_block = i + 1 == blocks_.size();
    RowSink& sink = last_block ? static_cast<RowSink&>(head) : tensor;
    const auto [begin, end] = team.band(g.ho, last_block ? head_group_rows(g.ho) : 1);
    if (i == 0) {
      run_fused_block(ks_, blocks_[0], g, stem, nullptr, sink, scratch, {begin, end});
    } else {
      run_block_from_tensor(ks_, blocks_[i], g, in, sink, scratch, {begin, end});
    }
    team.barrier();
    in = out;
    if (block_seconds && i + 1 < blocks_.size()) {
      const auto now = Clock::now();
      block_seconds->push_back(std::chrono::duration<double>(now - start).count());
      start = now;
    }
  }
  if (team.member != 0) return;
  head.pool(arena + a.pooled);
  std::copy(classifier_.bias.begin(), classifier_.bias.end(), logits);
  ks_.project.fn(1, classifier_.n, classifier_.k, arena + a.pooled, classifier_.k, classifier_.panels.data(),
                 classifier_.panel_stride, logits, classifier_.n);
  if (block_seconds) block_seconds->push_back(std::chrono::duration<double>(Clock::now() - start).count());
}

}  // namespace mbv2

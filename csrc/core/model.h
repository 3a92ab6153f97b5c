// The whole network: packed weights (shared, read-only after construction),
// cached per-shape plans, and a pool of arenas so concurrent run() calls never
// share scratch memory.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/common.h"
#include "core/int8_network.h"
#include "core/kernel_set.h"
#include "core/packing.h"
#include "core/plan.h"
#include "core/thread_pool.h"

namespace mbv2 {

constexpr size_t kMinInputSide = 32;    // five stride-2 stages leave a 1x1 map
constexpr size_t kMaxInputSide = 8192;  // keeps every size product far from overflow
// The most floats one run's input may hold (16 GiB): every offset into it, and
// n x classes for the output, then fit size_t with room to spare.
constexpr size_t kMaxBatchFloats = size_t{1} << 32;
// A run splits its steps over at most this many threads. The largest step
// (block 1 at 224x224) has 112 output rows, so more threads would idle; each
// costs a stack and a share of every step's claims.
constexpr size_t kMaxThreads = 256;

class Model {
 public:
  // An int8 network (spec.int8()) runs its blocks and head in int8
  // (core/int8_network.h), `isa` naming an int8 ISA (select_qkernels).
  // Validates `spec` and every array (names and shapes of docs/format.md;
  // Error kInvalidFormat on the first mismatch, kInvalidArgument for threads
  // outside [1, kMaxThreads], kUnsupportedIsa for `isa`, kOutOfMemory when a
  // worker thread cannot be started), then repacks the weights for the
  // kernels of `isa`. The arrays are not referenced afterwards.
  // dtype "bf16" runs a float32 network's 1x1 convs and classifier in bf16
  // (select_bf16_kernels; Error kInvalidArgument for an int8 network or a
  // dtype other than "float32" and "bf16").
  Model(const ArrayMap& arrays, NetworkSpec spec, const std::string& isa, size_t threads,
        const std::string& dtype = "float32");

  // Thread-safe; the plan is computed on first use of a size and cached.
  std::shared_ptr<const Plan> plan(size_t height, size_t width) const;

  // Logits (n x num_classes) for n images of 3 x height x width (or height x
  // width x 3 for NHWC); Error kInvalidArgument if any input value is NaN or
  // infinite (out is then left unspecified). Thread-safe: each call leases its
  // own arena, and the call that finds the thread pool busy runs on its own
  // thread alone (same results: no split ever changes a sum's order).
  void run(const float* x, size_t n, size_t height, size_t width, Layout layout, float* out) const;

  // Seconds spent in each block of one image on one thread (stem fused into
  // block 0, head and classifier into the last), best of `repeats` runs.
  std::vector<double> profile(const float* x, size_t height, size_t width, Layout layout, size_t repeats) const;

  // The ISA of the blocks' kernels: an int8 network's int8 ISA.
  const std::string& isa() const { return int8_ ? int8_->ks.isa : ks_.isa; }
  const char* precision() const { return int8_ ? "int8" : ks_.bf16 ? "bf16" : "float32"; }
  size_t threads() const { return threads_; }
  const NetworkSpec& spec() const { return spec_; }

 private:
  class ArenaLease;
  // One image's input, arena and logits, and the flag its load raises when
  // the input holds NaN or an infinity.
  struct ImageJob {
    const float* x;
    Layout layout;
    float* arena;
    float* logits;
    std::atomic<bool>* non_finite;
  };
  // Every image of a batch, split across the pool (how: at its definition).
  void run_batch(const Plan& plan, const float* x, size_t n, Layout layout, float* out,
                 std::atomic<bool>& non_finite) const;
  // An image is the sequence of steps plan.steps, each split into shares that
  // run at once (ThreadPool::run): the load (image rows), each block (output
  // rows, or a half of the hidden channels for a halved block, then adding its
  // halves), the head and the classifier (output channels).
  void run_step(const Plan& plan, const ImageJob& job, size_t step, Share share) const;
  // One function per step kind: share's image rows, output rows or halves,
  // elements of the halves' sum, head channels, a Dense layer's outputs.
  void run_load(const Plan& plan, const ImageJob& job, Share share) const;
  void run_block(const Plan& plan, const ImageJob& job, size_t i, Share share) const;
  void run_add_halves(const Plan& plan, const ImageJob& job, size_t i, Share share) const;
  void run_head(const Plan& plan, const ImageJob& job, Share share) const;
  // Dense layer j: hidden layer j of the head, the classifier when j == spec.hidden.size().
  void run_dense(const Plan& plan, const ImageJob& job, size_t j, Share share) const;
  // Every step of one image on the calling thread; step_seconds, when given,
  // receives each step's time.
  void run_image(const Plan& plan, const ImageJob& job, std::vector<double>* step_seconds = nullptr) const;
  // Two images on the calling thread, step by step.
  void run_image_pair(const Plan& plan, const ImageJob& a, const ImageJob& b) const;

  NetworkSpec spec_;
  KernelSet ks_;  // an int8 network's stem, Dense layers and classifier: float_isa_for
  size_t threads_;
  PackedConv stem_, head_;
  std::vector<PackedConv> dense_;  // the hidden layers, then the classifier
  std::vector<PackedBlock> blocks_;
  std::unique_ptr<Int8Network> int8_;  // an int8 network's blocks and head (blocks_ and head_ then empty)

  std::unique_ptr<ThreadPool> pool_;  // threads_ - 1 workers; null when threads_ == 1
  mutable std::mutex pool_mutex_;     // held by the run() using the pool

  mutable std::mutex mutex_;  // guards the two caches below
  mutable std::map<std::pair<size_t, size_t>, std::shared_ptr<const Plan>> plans_;
  mutable std::vector<std::unique_ptr<AlignedBuffer>> idle_arenas_;
};

// Throws Error kInvalidArgument unless n >= 1, both sides are in range and the
// batch holds at most kMaxBatchFloats floats.
void check_input_size(size_t n, size_t height, size_t width);

}  // namespace mbv2

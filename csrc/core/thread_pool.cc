#include "core/thread_pool.h"

namespace mbv2 {
namespace {

// Busy-waits a little (a barrier between blocks is usually met within
// microseconds), then yields the core to whoever holds it up.
template <class Done>
void wait_until(Done done) {
  for (int spins = 0; !done(); spins++) {
    if (spins > 2000) std::this_thread::yield();
  }
}

}  // namespace

ThreadPool::ThreadPool(size_t size) {
  for (size_t member = 1; member < size; member++) workers_.emplace_back([this, member] { work(member); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::run(const std::function<void(size_t)>& task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    busy_.store(workers_.size(), std::memory_order_relaxed);
    generation_++;
  }
  wake_.notify_all();
  task(0);
  wait_until([&] { return busy_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::barrier() {
  const uint64_t phase = phase_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == size()) {
    arrived_.store(0, std::memory_order_relaxed);
    phase_.fetch_add(1, std::memory_order_acq_rel);
  } else {
    wait_until([&] { return phase_.load(std::memory_order_acquire) != phase; });
  }
}

void ThreadPool::work(size_t member) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(size_t)>* task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      task = task_;
    }
    (*task)(member);
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace mbv2

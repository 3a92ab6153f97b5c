#include "core/thread_pool.h"

#include <string>
#include <system_error>

#include "core/status.h"

namespace mbv2 {

// Busy-waits a little (the shares of one step usually finish within
// microseconds of each other), then yields the core to whoever holds them up.
// Never sleeps: on the VMs here a core that went idle takes milliseconds to
// wake again.
template <class Done>
void ThreadPool::wait_until(Done done) {
  for (int spins = 0; !done(); spins++) {
    if (spins > 2000) std::this_thread::yield();
  }
}

ThreadPool::ThreadPool(size_t size) : joined_(new std::atomic<bool>[size]) {
  for (size_t member = 1; member < size; member++) {
    try {
      workers_.emplace_back([this, member] { work(member); });
    } catch (const std::system_error& e) {
      // The workers started so far wait on this pool's condition variable:
      // they must be stopped and joined before the pool's members go.
      stop_workers();
      throw Error(Status::kOutOfMemory, "could not start worker thread " + std::to_string(member) + " of " +
                                            std::to_string(size - 1) + " (" + e.what() + "): use fewer threads");
    }
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::run(size_t steps, const StepFn& fn) {
  if (steps == 0) return;
  {
    // No worker is inside a run here (the last one waited for them all), so
    // the per-run state can be reset and resized.
    std::lock_guard<std::mutex> lock(mutex_);
    if (steps > capacity_) {
      claimed_.reset(new std::atomic<bool>[steps * size()]);
      band_claims_.reset(new BandClaims[steps * size()]);
      done_.reset(new std::atomic<size_t>[steps]);
      capacity_ = steps;
    }
    for (size_t i = 0; i < steps * size(); i++) {
      claimed_[i].store(false, std::memory_order_relaxed);
      band_claims_[i].taken.store(0, std::memory_order_relaxed);
    }
    for (size_t s = 0; s < steps; s++) done_[s].store(0, std::memory_order_relaxed);
    for (size_t m = 0; m < size(); m++) joined_[m].store(false, std::memory_order_relaxed);
    fn_ = &fn;
    steps_ = steps;
    open_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  take_part(0);
  wait_until([&] { return done_[steps - 1].load(std::memory_order_acquire) == size(); });
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;  // a worker not yet inside skips this run
  }
  // Those inside only pass claimed shares now, but still read the run's state.
  wait_until([&] { return inside_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::take_part(size_t me) {
  for (size_t s = 0; s < steps_; s++) {
    if (s > 0) wait_until([&] { return done_[s - 1].load(std::memory_order_acquire) == size(); });
    run_share(s, me);
    if (me != 0) continue;
    for (size_t m = 1; m < size(); m++) {
      if (!joined_[m].load(std::memory_order_acquire)) run_share(s, m);
    }
  }
}

void ThreadPool::run_share(size_t step, size_t share) {
  if (claimed_[step * size() + share].exchange(true, std::memory_order_acq_rel)) return;
  (*fn_)(step, Share{share, size(), &band_claims_[step * size()]});
  done_[step].fetch_add(1, std::memory_order_acq_rel);
}

void ThreadPool::watch_for_run(uint64_t seen) const {
  const auto until = std::chrono::steady_clock::now() + kSpinAfterRun;
  while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
}

void ThreadPool::work(size_t member) {
  uint64_t seen = 0;
  for (;;) {
    watch_for_run(seen);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
      if (!open_) continue;  // woke too late: the caller has finished this run alone
      joined_[member].store(true, std::memory_order_release);
      inside_.fetch_add(1, std::memory_order_relaxed);
    }
    take_part(member);
    inside_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace mbv2

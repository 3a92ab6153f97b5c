// A persistent team of worker threads, created once per Model: a run hands the
// same task to every member (the caller is member 0) and members meet at
// barriers between the blocks of one image. Workers sleep on a condition
// variable between runs; barriers spin briefly, then yield, because the
// machines are small and shared and threads may outnumber cores.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mbv2 {

class ThreadPool {
 public:
  explicit ThreadPool(size_t size);  // size - 1 worker threads
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }

  // Runs task(member) on every member and returns when all have finished. One
  // run at a time: concurrent callers must serialise (Model holds a mutex).
  void run(const std::function<void(size_t)>& task);

  // Called by every member of a run: returns once all have arrived, and all
  // writes made before it are visible to every member after it.
  void barrier();

 private:
  void work(size_t member);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const std::function<void(size_t)>* task_ = nullptr;  // guarded by mutex_
  uint64_t generation_ = 0;                             // guarded by mutex_
  bool stop_ = false;                                   // guarded by mutex_
  std::atomic<size_t> busy_{0};                         // workers still inside the current task
  std::atomic<size_t> arrived_{0};                      // members at the current barrier
  std::atomic<uint64_t> phase_{0};                      // barriers completed
};

// The part of a ThreadPool one member of a run sees: who it is, how many there
// are, and the barrier. A team of one (no pool) never waits.
struct Team {
  size_t member = 0, size = 1;
  ThreadPool* pool = nullptr;

  void barrier() const {
    if (size > 1) pool->barrier();
  }
  // This member's share [begin, end) of n items, in contiguous near-equal
  // bands that start on multiples of `granule`.
  std::pair<size_t, size_t> band(size_t n, size_t granule = 1) const {
    const size_t units = (n + granule - 1) / granule;
    return {std::min(n, units * member / size * granule), std::min(n, units * (member + 1) / size * granule)};
  }
};

}  // namespace mbv2

// A persistent team of worker threads, created once per Model. A run is a
// sequence of steps (one image: load, each block, head, classifier), each
// split into size() shares; share j of a step is meant for member j (the
// caller is member 0), and a step starts once every share of the one before
// it is done.
//
// A worker can be slow to start: its core may be asleep after an idle spell,
// or busy with another process's spinning threads (the machines are small and
// shared). So the caller also runs the shares of every worker that has not
// joined the run yet, each share claimed by exactly one thread; once a worker
// has joined it keeps its own shares, so a worker that is merely a little
// late never loses a whole share to the caller. A run never waits for a worker
// that never joined: the caller closes the run and that worker skips it.
// Waits inside a run spin briefly, then yield. Between runs a worker keeps
// watching for the next run for kSpinAfterRun, yielding, before it sleeps on a
// condition variable: on these VMs a core that halted takes milliseconds to
// wake, so a worker put to sleep right after each run joined the next one late
// and 2 threads took 5.9 ms instead of 3.0 whenever calls were not quite back
// to back (ONNX Runtime's and XNNPACK's pools spin after a run for the same reason).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace mbv2 {

// How many items of one member's band (Share::band) have been taken, from its
// front (low 32 bits) and from its back (high 32 bits). On a cache line of its
// own: the owner updates it for every item.
struct alignas(64) BandClaims {
  std::atomic<uint64_t> taken{0};
};

// One share of a step: the index of the member it is meant for, of `count`.
struct Share {
  size_t index = 0, count = 1;
  // The step's claims, one per member, in a pool run; null otherwise.
  BandClaims* claims = nullptr;

  // This share of n items [begin, end), in contiguous near-equal bands that
  // start on multiples of `granule`.
  std::pair<size_t, size_t> band(size_t n, size_t granule = 1) const {
    const size_t units = (n + granule - 1) / granule;
    return {std::min(n, units * index / count * granule), std::min(n, units * (index + 1) / count * granule)};
  }

  // Calls f(begin, end) on ranges of the n items [0, n) such that the shares
  // of one step, all passing the same n, cover every item exactly once.
  // Outside a pool run: once, with this share's band. In a run: its band item
  // by item from the front, then what the other members have not taken of
  // theirs, item by item from the back. The two cores of these VMs often run
  // at different speeds for a while (a core's other hardware thread busy with
  // another VM's work): 2 threads at 224 differed by 15-20% per step, and with
  // fixed bands the faster one waited at every step's end.
  template <class F>
  void claim(size_t n, F f) const {
    const auto [begin, end] = band(n);
    if (!claims) {
      if (begin < end) f(begin, end);
      return;
    }
    for (size_t i; (i = take_front(claims[index], end - begin)) != kNone;) f(begin + i, begin + i + 1);
    for (size_t d = 1; d < count; d++) {
      const size_t other = (index + d) % count;
      const auto [first, last] = Share{other, count}.band(n);
      for (size_t i; (i = take_back(claims[other], last - first)) != kNone;) f(last - 1 - i, last - i);
    }
  }

 private:
  static constexpr size_t kNone = SIZE_MAX;
  static constexpr uint64_t kBack = uint64_t(1) << 32;
  // The next item from the front of a band of len items (its offset in the
  // band), or kNone once all are taken. One add: a front that overshoots once
  // the band is empty only makes it read as empty.
  static size_t take_front(BandClaims& c, size_t len) {
    const uint64_t old = c.taken.fetch_add(1, std::memory_order_relaxed);
    const size_t front = old & (kBack - 1), back = old >> 32;
    return front + back < len ? front : kNone;
  }
  // The next item from the back, counted from the band's end, or kNone.
  static size_t take_back(BandClaims& c, size_t len) {
    uint64_t old = c.taken.load(std::memory_order_relaxed);
    do {
      if ((old & (kBack - 1)) + (old >> 32) >= len) return kNone;
    } while (!c.taken.compare_exchange_weak(old, old + kBack, std::memory_order_relaxed));
    return old >> 32;
  }
};

class ThreadPool {
 public:
  static constexpr std::chrono::microseconds kSpinAfterRun{2000};

  using StepFn = std::function<void(size_t step, Share share)>;

  // size - 1 worker threads; Error kOutOfMemory (and no thread left running)
  // when the system cannot start one of them.
  explicit ThreadPool(size_t size);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }

  // Runs fn(step, share) for steps 0 .. steps - 1 in order and every share of
  // each, and returns when all are done. fn must not throw. One run at a time:
  // concurrent callers must serialise (Model holds a mutex).
  void run(size_t steps, const StepFn& fn);

 private:
  void work(size_t member);
  void stop_workers();  // wakes every worker to stop, and joins them
  // The steps as member `me` sees them; the caller also runs absent members' shares.
  void take_part(size_t me);
  void run_share(size_t step, size_t share);
  // Yields until a run after `seen` is posted or kSpinAfterRun has passed.
  void watch_for_run(uint64_t seen) const;
  template <class Done>
  void wait_until(Done done);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const StepFn* fn_ = nullptr;  // the run's; guarded by mutex_ until a member joins
  size_t steps_ = 0;
  // Changed only under mutex_ (the condition variable's predicate reads it);
  // atomic so that workers watching for a run read it without the lock.
  std::atomic<uint64_t> generation_{0};
  bool open_ = false;        // guarded by mutex_: workers may still join the current run
  bool stop_ = false;        // guarded by mutex_
  // Per run: claimed_[step * size() + share], done_[step] (shares finished),
  // joined_[member], band_claims_[step * size() + member]; sized for the
  // longest run so far.
  std::unique_ptr<std::atomic<bool>[]> claimed_;
  std::unique_ptr<BandClaims[]> band_claims_;
  std::unique_ptr<std::atomic<size_t>[]> done_;
  std::unique_ptr<std::atomic<bool>[]> joined_;
  size_t capacity_ = 0;                 // steps claimed_, done_ and band_claims_ have room for
  std::atomic<size_t> inside_{0};       // workers inside the current run
};

}  // namespace mbv2

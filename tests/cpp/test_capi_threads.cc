// One engine, many threads: 8 threads x 50 runs each, every result bitwise
// equal to the single-threaded one. Also built with -fsanitize=thread by
// .ci/cpp-tests.sh, where ThreadSanitizer checks the same runs for races.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.h"
#include "mbv2/mbv2.hpp"

namespace {

using mbv2::test::fixture;
using mbv2::test::random_images;

constexpr size_t kThreads = 8;
constexpr size_t kRunsPerThread = 50;
constexpr size_t kSide = 48;  // small: the ThreadSanitizer build runs all 400 runs too

TEST(CApiThreads, ConcurrentRunsMatchTheSingleThreadedOnes) {
  // Two worker threads per engine, so any pool inside a run is exercised as well.
  const mbv2::Engine engine(fixture("valid_0.35.npz").string(), mbv2::Options{2, "auto"});
  // Each host thread runs its own image: a shared arena would mix them up.
  std::vector<std::vector<float>> images, expected;
  for (size_t t = 0; t < kThreads; t++) {
    images.push_back(random_images(1, kSide, kSide, static_cast<unsigned>(100 + t)));
    expected.push_back(engine.run(images[t].data(), 1, kSide, kSide));
  }
  std::atomic<size_t> mismatches{0}, failures{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < kRunsPerThread; i++) {
        try {
          if (engine.run(images[t].data(), 1, kSide, kSide) != expected[t]) mismatches++;
        } catch (const mbv2::Exception&) {
          failures++;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0u);
  EXPECT_EQ(mismatches.load(), 0u) << "of " << kThreads * kRunsPerThread << " runs";
}

}  // namespace

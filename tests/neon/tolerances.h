// The entries of mbv2_engine/tolerances.py the NEON tests compare with, mirrored
// here once: keep the numbers equal to the Python table's (its reasons apply).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <sstream>
#include <vector>

namespace mbv2::neon_tests {

struct Tolerance {
  const char* entry;
  double atol, rtol;
};

inline constexpr Tolerance kUkernelVsRef{"f32_ukernel_vs_ref", 1e-5, 1e-5};
inline constexpr Tolerance kNetworkVsF64{"f32_network_vs_f64", 1e-4, 1e-4};

// |actual - expected| <= atol + rtol * |expected| everywhere (NaN fails), as
// violations() in the Python table; a failure names the count and first indices.
inline testing::AssertionResult all_close(const std::vector<float>& actual, const std::vector<float>& expected,
                                          Tolerance tol) {
  if (actual.size() != expected.size()) {
    return testing::AssertionFailure() << "size " << actual.size() << " != " << expected.size();
  }
  size_t bad = 0;
  double worst = 0.0;
  std::ostringstream first;
  for (size_t i = 0; i < actual.size(); i++) {
    const double err = std::fabs(double(actual[i]) - double(expected[i]));
    if (err <= tol.atol + tol.rtol * std::fabs(double(expected[i]))) continue;
    if (bad++ < 5) first << " [" << i << "] " << actual[i] << " vs " << expected[i];
    worst = std::isnan(err) || err > worst ? err : worst;
  }
  if (bad == 0) return testing::AssertionSuccess();
  return testing::AssertionFailure() << tol.entry << ": " << bad << " of " << actual.size()
                                     << " values off (max |error| " << worst << ", atol " << tol.atol << ", rtol "
                                     << tol.rtol << "); first:" << first.str();
}

}  // namespace mbv2::neon_tests

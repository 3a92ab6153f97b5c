// What the C++ tests share: where the weight files of make_fixtures.py are
// (ctest writes them first and passes their folder in $MBV2_FIXTURE_DIR) and
// deterministic input images.
#pragma once

#include <cstdlib>
#include <cstddef>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace mbv2::test {

inline std::filesystem::path fixture(const std::string& name) {
  const char* dir = std::getenv("MBV2_FIXTURE_DIR");
  if (dir == nullptr) throw std::runtime_error("MBV2_FIXTURE_DIR is not set; run the tests through ctest");
  return std::filesystem::path(dir) / name;
}

// n normalised-looking images (values in [-2, 2]), n x 3 x height x width, the same for a seed.
inline std::vector<float> random_images(std::size_t n, std::size_t height, std::size_t width, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::vector<float> images(n * 3 * height * width);
  for (float& v : images) v = value(rng);
  return images;
}

}  // namespace mbv2::test

// cpp_host MODEL.npz IMAGE.ppm: classify a binary PPM (P6) picture and print
// the top 5 as "index probability label" lines.
//
// The picture is prepared as the weight file says and as mbv2_engine/preprocess.py
// does it: resize so the centre crop covers crop_fraction, crop, /255, then
// (x - mean) / std. The resize reproduces Pillow's BILINEAR filter (a triangle
// filter widened when shrinking, 22-bit fixed point, horizontal pass first), so
// the network sees the same bytes as the Python engine's: byte for byte on the
// aspect-preserving resizes preprocessing makes. (Pillow may run the vertical
// pass first when the two axes scale very differently, which rounds otherwise.)
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "mbv2/mbv2.hpp"

namespace {

struct Image {
  size_t height = 0, width = 0;
  std::vector<uint8_t> rgb;  // height x width x 3
};

// The next header token of a PPM, skipping whitespace and # comments.
std::string ppm_token(std::istream& in) {
  std::string token;
  for (int c = in.get(); c != EOF; c = in.get()) {
    if (c == '#' && token.empty()) {
      in.ignore(1 << 20, '\n');
    } else if (std::isspace(c)) {
      if (!token.empty()) return token;  // consumes exactly one whitespace after the token
    } else {
      token += static_cast<char>(c);
    }
  }
  throw std::runtime_error("truncated PPM header");
}

Image read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  if (ppm_token(in) != "P6") throw std::runtime_error(path + " is not a binary PPM (P6)");
  Image image;
  image.width = std::stoul(ppm_token(in));
  image.height = std::stoul(ppm_token(in));
  if (ppm_token(in) != "255") throw std::runtime_error(path + ": only 8-bit PPMs (maxval 255) are read");
  image.rgb.resize(image.height * image.width * 3);
  if (!in.read(reinterpret_cast<char*>(image.rgb.data()), static_cast<std::streamsize>(image.rgb.size()))) {
    throw std::runtime_error(path + ": pixel data is truncated");
  }
  return image;
}

// Pillow's resampling along one axis: `count` lines of `in_size` pixels, each
// `pixel_step` apart (lines `line_step` apart), become lines of `out_size`.
std::vector<uint8_t> resample_axis(const std::vector<uint8_t>& in, size_t in_size, size_t out_size, size_t count,
                                   size_t pixel_step, size_t line_step, size_t out_pixel_step,
                                   size_t out_line_step) {
  constexpr int kPrecision = 22;  // Pillow's PRECISION_BITS for 8-bit images
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // the bilinear (triangle) filter's support is 1
  const double inverse = 1.0 / filter_scale;  // Pillow multiplies by it: dividing could round differently
  std::vector<uint8_t> out(count * out_size * 3);
  for (size_t o = 0; o < out_size; o++) {
    const double center = (o + 0.5) * scale;
    const int lo = std::max(0, static_cast<int>(center - support + 0.5));
    const int hi = std::min(static_cast<int>(in_size), static_cast<int>(center + support + 0.5));
    std::vector<double> weights;
    for (int i = lo; i < hi; i++) weights.push_back(std::max(0.0, 1.0 - std::abs((i - center + 0.5) * inverse)));
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    std::vector<int32_t> fixed;
    for (double w : weights) {
      const double v = (total != 0.0 ? w / total : w) * (1 << kPrecision);
      fixed.push_back(static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5));
    }
    for (size_t line = 0; line < count; line++) {
      for (size_t c = 0; c < 3; c++) {
        int32_t sum = 1 << (kPrecision - 1);
        for (size_t k = 0; k < fixed.size(); k++) sum += in[line * line_step + (lo + k) * pixel_step + c] * fixed[k];
        out[line * out_line_step + o * out_pixel_step + c] = static_cast<uint8_t>(std::clamp(sum >> kPrecision, 0, 255));
      }
    }
  }
  return out;
}

Image resize(const Image& image, size_t height, size_t width) {
  const size_t w_in = image.width * 3, w_out = width * 3;
  Image wide{image.height, width, resample_axis(image.rgb, image.width, width, image.height, 3, w_in, 3, w_out)};
  return {height, width, resample_axis(wide.rgb, image.height, height, width, w_out, 3, w_out, 3)};
}

// The normalised 1 x 3 x H x W batch, as mbv2_engine/preprocess.py makes it.
std::vector<float> preprocess(const Image& image, const mbv2::Engine& engine) {
  const size_t out_h = engine.input_height(), out_w = engine.input_width();
  const mbv2_preprocess p = engine.preprocess();
  const double scale = std::max(out_h / p.crop_fraction / image.height, out_w / p.crop_fraction / image.width);
  // std::nearbyint rounds halves to even, as Python's round() does.
  const auto new_h = std::max(out_h, static_cast<size_t>(std::nearbyint(image.height * scale)));
  const auto new_w = std::max(out_w, static_cast<size_t>(std::nearbyint(image.width * scale)));
  const Image resized = resize(image, new_h, new_w);
  const size_t top = (new_h - out_h) / 2, left = (new_w - out_w) / 2;
  std::vector<float> x(3 * out_h * out_w);
  for (size_t c = 0; c < 3; c++) {
    const float mean = static_cast<float>(p.mean[c]), std = static_cast<float>(p.std[c]);
    for (size_t y = 0; y < out_h; y++) {
      for (size_t col = 0; col < out_w; col++) {
        const float v = resized.rgb[((top + y) * new_w + left + col) * 3 + c] / 255.0f;
        x[(c * out_h + y) * out_w + col] = (v - mean) / std;
      }
    }
  }
  return x;
}

void print_top5(const std::vector<float>& logits, const std::vector<std::string>& labels) {
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  for (size_t i = 0; i < p.size(); i++) p[i] = std::exp(logits[i] - top);
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  for (size_t r = 0; r < std::min<size_t>(5, order.size()); r++) {
    const size_t i = order[r];
    const std::string label = labels.empty() ? "class " + std::to_string(i) : labels[i];
    std::printf("%zu %.6f %s\n", i, p[i] / total, label.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.npz IMAGE.ppm\n", argv[0]);
    return 2;
  }
  try {
    const mbv2::Engine engine(argv[1]);
    const std::vector<float> x = preprocess(read_ppm(argv[2]), engine);
    print_top5(engine.run(x.data(), 1, engine.input_height(), engine.input_width()), engine.labels());
  } catch (const mbv2::Exception& e) {
    std::fprintf(stderr, "error (%s): %s\n", mbv2_status_string(e.status()), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

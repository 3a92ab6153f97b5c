// Header-only C++ wrapper of the C API (mbv2.h): an owning, movable Engine
// whose methods throw mbv2::Exception (the status and the library's message)
// instead of returning a status. C++11.
//
//     mbv2::Engine engine("model.npz");
//     std::vector<float> logits = engine.run(x.data(), 1, 224, 224);
#ifndef MBV2_MBV2_HPP_
#define MBV2_MBV2_HPP_

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mbv2/mbv2.h"

namespace mbv2 {

class Exception : public std::runtime_error {
 public:
  Exception(mbv2_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  mbv2_status status() const noexcept { return status_; }

 private:
  mbv2_status status_;
};

inline void check(mbv2_status status) {
  if (status != MBV2_STATUS_OK) throw Exception(status, mbv2_last_error_message());
}

struct Options {
  std::size_t threads = 0;    // 0: one per hardware thread
  std::string isa = "auto";  // "auto", "ref", ...
  std::string dtype = "fp32";  // or "bf16" (mbv2.h, mbv2_engine_options)
};

class Engine {
 public:
  explicit Engine(const std::string& path, const Options& options = Options()) {
    const mbv2_engine_options opts = c_options(options);
    check(mbv2_engine_create_from_file(path.c_str(), &opts, &handle_));
  }

  static Engine from_memory(const void* data, std::size_t size, const Options& options = Options()) {
    const mbv2_engine_options opts = c_options(options);
    mbv2_engine* handle = nullptr;
    check(mbv2_engine_create_from_memory(data, size, &opts, &handle));
    return Engine(handle);
  }

  Engine(Engine&& other) noexcept : handle_(other.handle_) { other.handle_ = nullptr; }
  Engine& operator=(Engine&& other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() { mbv2_engine_destroy(handle_); }

  std::size_t input_height() const { return input_size().first; }
  std::size_t input_width() const { return input_size().second; }

  std::size_t num_classes() const {
    std::size_t classes = 0;
    check(mbv2_engine_get_num_classes(handle_, &classes));
    return classes;
  }

  mbv2_preprocess preprocess() const {
    mbv2_preprocess p;
    check(mbv2_engine_get_preprocess(handle_, &p));
    return p;
  }

  // One name per class, or empty when the file carries no labels.
  std::vector<std::string> labels() const {
    std::vector<std::string> names;
    for (std::size_t i = 0, n = num_classes(); i < n; i++) {
      const char* label = nullptr;
      check(mbv2_engine_get_label(handle_, i, &label));
      if (label == nullptr) return {};
      names.emplace_back(label);
    }
    return names;
  }

  std::string isa() const {
    const char* name = nullptr;
    check(mbv2_engine_get_isa(handle_, &name));
    return name;
  }
  std::string precision() const {
    const char* name = nullptr;
    check(mbv2_engine_get_precision(handle_, &name));
    return name;
  }

  // Logits, n x num_classes, for n normalised images. Thread-safe.
  std::vector<float> run(const float* input, std::size_t n, std::size_t height, std::size_t width,
                         mbv2_layout layout = MBV2_LAYOUT_NCHW) const {
    std::vector<float> logits(n * num_classes());
    check(mbv2_engine_run(handle_, input, n, height, width, layout, logits.data(), logits.size()));
    return logits;
  }

  mbv2_engine* get() const noexcept { return handle_; }

 private:
  explicit Engine(mbv2_engine* handle) : handle_(handle) {}

  static mbv2_engine_options c_options(const Options& options) {
    mbv2_engine_options opts;
    check(mbv2_engine_options_init(&opts));
    opts.threads = options.threads;
    opts.isa = options.isa.c_str();
    opts.dtype = options.dtype.c_str();
    return opts;
  }

  std::pair<std::size_t, std::size_t> input_size() const {
    std::pair<std::size_t, std::size_t> size(0, 0);
    check(mbv2_engine_get_input_size(handle_, &size.first, &size.second));
    return size;
  }

  mbv2_engine* handle_ = nullptr;
};

}  // namespace mbv2

#endif  // MBV2_MBV2_HPP_

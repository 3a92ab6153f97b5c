// The C API of csrc/include/mbv2/mbv2.h over the core. Every entry point runs
// its body through guard(), so no exception reaches a C host: each becomes a
// status and a per-thread message.
#include "mbv2/mbv2.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <utility>

#include "capi/convert.h"
#include "core/kernel_set.h"
#include "core/model.h"
#include "core/status.h"
#include "io/weight_file.h"

#ifndef MBV2_VERSION
#error "MBV2_VERSION must be defined by the build (CMake: PROJECT_VERSION)"
#endif

using mbv2::Error;
using mbv2::Status;

struct mbv2_engine {
  mbv2::io::Metadata meta;
  std::unique_ptr<mbv2::Model> model;
};

namespace {

static_assert(MBV2_STATUS_OK == static_cast<int>(Status::kOk) &&
                  MBV2_STATUS_INVALID_ARGUMENT == static_cast<int>(Status::kInvalidArgument) &&
                  MBV2_STATUS_FILE_NOT_FOUND == static_cast<int>(Status::kFileNotFound) &&
                  MBV2_STATUS_IO_ERROR == static_cast<int>(Status::kIoError) &&
                  MBV2_STATUS_INVALID_FORMAT == static_cast<int>(Status::kInvalidFormat) &&
                  MBV2_STATUS_UNSUPPORTED_VERSION == static_cast<int>(Status::kUnsupportedVersion) &&
                  MBV2_STATUS_UNSUPPORTED_ISA == static_cast<int>(Status::kUnsupportedIsa) &&
                  MBV2_STATUS_OUT_OF_MEMORY == static_cast<int>(Status::kOutOfMemory) &&
                  MBV2_STATUS_INTERNAL == static_cast<int>(Status::kInternal),
              "mbv2_status must mirror mbv2::Status");

// A fixed buffer rather than a std::string: recording a failure must not
// allocate, or an out-of-memory failure could not be reported.
thread_local char last_error[1024] = "";

mbv2_status fail(const char* function, Status status, const char* message) noexcept {
  std::snprintf(last_error, sizeof last_error, "%s: %s", function, message);
  return static_cast<mbv2_status>(status);
}

template <class Body>
mbv2_status guard(const char* function, Body&& body) noexcept {
  try {
    body();
    return MBV2_STATUS_OK;
  } catch (const Error& e) {
    return fail(function, e.status(), e.what());
  } catch (const std::bad_alloc&) {
    return fail(function, Status::kOutOfMemory, "out of memory");
  } catch (const std::exception& e) {
    return fail(function, Status::kInternal, e.what());
  } catch (...) {
    return fail(function, Status::kInternal, "unknown exception");
  }
}

void require(const void* pointer, const char* name) {
  if (pointer == nullptr) throw Error(Status::kInvalidArgument, std::string(name) + " is NULL");
}

// The core's name for a dtype ("fp32" is the Python API's name for float32).
std::string core_dtype(const char* dtype) {
  const std::string name = dtype != nullptr ? dtype : "fp32";
  if (name == "fp32") return "float32";
  if (name == "bf16") return name;
  throw Error(Status::kInvalidArgument, "dtype must be \"fp32\" or \"bf16\", got \"" + name + "\"");
}

size_t resolve_threads(size_t threads) {
  if (threads != 0) return threads;  // the model refuses more than kMaxThreads
  const size_t hardware = std::thread::hardware_concurrency();
  return std::clamp<size_t>(hardware, 1, mbv2::kMaxThreads);
}

// Loads with `load` (path or memory), builds the model, hands the engine out.
// A refusal after the reader's (which names the file itself) names `source`.
template <class Load>
void create(const mbv2_engine_options* options, mbv2_engine** engine, const std::string& source, Load load) {
  require(engine, "engine");
  *engine = nullptr;
  mbv2_engine_options defaults;
  mbv2_engine_options_init(&defaults);
  const mbv2_engine_options& opts = options != nullptr ? *options : defaults;
  const std::string isa = opts.isa != nullptr ? opts.isa : "auto", dtype = core_dtype(opts.dtype);
  const mbv2::io::WeightFile file = [&] {
    try {
      return load();
    } catch (const std::bad_alloc&) {
      throw Error(Status::kOutOfMemory, source + ": out of memory while reading the weight file");
    }
  }();
  try {
    auto model = mbv2::capi::make_model(file, isa, resolve_threads(opts.threads), dtype);
    *engine = new mbv2_engine{file.meta, std::move(model)};
  } catch (const std::bad_alloc&) {
    throw Error(Status::kOutOfMemory, source + ": out of memory while packing the weights for the kernels");
  } catch (const Error& e) {
    throw Error(e.status(), source + ": " + e.what());
  }
}

mbv2::Layout core_layout(mbv2_layout layout) {
  if (layout == MBV2_LAYOUT_NCHW) return mbv2::Layout::NCHW;
  if (layout == MBV2_LAYOUT_NHWC) return mbv2::Layout::NHWC;
  throw Error(Status::kInvalidArgument, "layout is " + std::to_string(static_cast<int>(layout)) +
                                            "; expected MBV2_LAYOUT_NCHW or MBV2_LAYOUT_NHWC");
}

void check_out_len(size_t n, size_t num_classes, size_t out_len) {
  // Compared by division so that a huge n cannot overflow n * num_classes.
  if (out_len % num_classes != 0 || out_len / num_classes != n) {
    throw Error(Status::kInvalidArgument, "out_len is " + std::to_string(out_len) + " floats; expected n x classes = " +
                                              std::to_string(n) + " x " + std::to_string(num_classes));
  }
}

}  // namespace

extern "C" {

const char* mbv2_version(void) { return MBV2_VERSION; }

const char* mbv2_status_string(mbv2_status status) { return mbv2::status_string(static_cast<Status>(status)); }

const char* mbv2_last_error_message(void) { return last_error; }

mbv2_status mbv2_engine_options_init(mbv2_engine_options* options) {
  return guard(__func__, [&] {
    require(options, "options");
    *options = mbv2_engine_options{0, "auto", "fp32"};
  });
}

mbv2_status mbv2_engine_create_from_file(const char* path, const mbv2_engine_options* options,
                                         mbv2_engine** engine) {
  return guard(__func__, [&] {
    require(path, "path");
    create(options, engine, path, [&] { return mbv2::io::load_weight_file(path); });
  });
}

mbv2_status mbv2_engine_create_from_memory(const void* data, size_t size, const mbv2_engine_options* options,
                                           mbv2_engine** engine) {
  return guard(__func__, [&] {
    require(data, "data");
    create(options, engine, "the weight file in memory", [&] {
      return mbv2::io::load_weight_file_from_memory(data, size);
    });
  });
}

void mbv2_engine_destroy(mbv2_engine* engine) { delete engine; }

mbv2_status mbv2_engine_get_input_size(const mbv2_engine* engine, size_t* height, size_t* width) {
  return guard(__func__, [&] {
    require(engine, "engine");
    require(height, "height");
    require(width, "width");
    *height = static_cast<size_t>(engine->meta.input_height);
    *width = static_cast<size_t>(engine->meta.input_width);
  });
}

mbv2_status mbv2_engine_get_num_classes(const mbv2_engine* engine, size_t* num_classes) {
  return guard(__func__, [&] {
    require(engine, "engine");
    require(num_classes, "num_classes");
    *num_classes = engine->model->spec().num_classes;
  });
}

mbv2_status mbv2_engine_get_preprocess(const mbv2_engine* engine, mbv2_preprocess* preprocess) {
  return guard(__func__, [&] {
    require(engine, "engine");
    require(preprocess, "preprocess");
    const mbv2::io::Preprocess& p = engine->meta.preprocess;
    *preprocess = mbv2_preprocess{p.crop_fraction, {p.mean[0], p.mean[1], p.mean[2]}, {p.std[0], p.std[1], p.std[2]}};
  });
}

mbv2_status mbv2_engine_get_label(const mbv2_engine* engine, size_t index, const char** label) {
  return guard(__func__, [&] {
    require(engine, "engine");
    require(label, "label");
    const size_t classes = engine->model->spec().num_classes;
    if (index >= classes) {
      throw Error(Status::kInvalidArgument,
                  "label index " + std::to_string(index) + " is out of range; the model has " +
                      std::to_string(classes) + " classes");
    }
    const auto& labels = engine->meta.labels;
    *label = labels ? (*labels)[index].c_str() : nullptr;
  });
}

mbv2_status mbv2_engine_get_isa(const mbv2_engine* engine, const char** isa) {
  return guard(__func__, [&] {
    require(engine, "engine");
    require(isa, "isa");
    *isa = engine->model->isa().c_str();
  });
}

mbv2_status mbv2_engine_get_precision(const mbv2_engine* engine, const char** precision) {
  return guard(__func__, [&] {
    require(engine, "engine");
    require(precision, "precision");
    *precision = engine->model->precision();
  });
}

mbv2_status mbv2_engine_run(const mbv2_engine* engine, const float* input, size_t n, size_t height, size_t width,
                            mbv2_layout layout, float* out, size_t out_len) {
  return guard(__func__, [&] {
    require(engine, "engine");
    require(input, "input");
    require(out, "out");
    const mbv2::Layout core = core_layout(layout);
    mbv2::check_input_size(n, height, width);
    check_out_len(n, engine->model->spec().num_classes, out_len);
    engine->model->run(input, n, height, width, core, out);
  });
}

}  // extern "C"

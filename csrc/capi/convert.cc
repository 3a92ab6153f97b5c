#include "capi/convert.h"

#include <string>

#include "core/status.h"

namespace mbv2::capi {
namespace {

// Views into `file`'s arrays: the core copies (repacks) them while it is built.
ArrayMap array_views(const io::WeightFile& file) {
  ArrayMap views;
  for (const auto& [name, tensor] : file.arrays) {
    views[name] = tensor.view();
  }
  return views;
}

}  // namespace

std::unique_ptr<Model> make_model(const io::WeightFile& file, const std::string& isa, std::size_t threads,
                                  const std::string& dtype) {
  try {
    return std::make_unique<Model>(array_views(file), file.network, isa, threads, dtype);
  } catch (const Error& e) {
    // The reader accepted the file, so a format refusal here is a network the
    // core does not run (e.g. a width so small that block 0 gets a residual).
    if (e.status() != Status::kInvalidFormat) throw;
    throw Error(Status::kInvalidFormat, std::string("the engine cannot run this network: ") + e.what());
  }
}

}  // namespace mbv2::capi

#include "capi/convert.h"

#include <stdexcept>
#include <utility>

#include "io/status.h"

namespace mbv2::capi {
namespace {

NetworkSpec network_spec(const io::WeightFile& file) {
  NetworkSpec spec;
  spec.stem = static_cast<size_t>(file.arch.stem);
  spec.last = static_cast<size_t>(file.arch.last);
  spec.num_classes = static_cast<size_t>(file.arch.num_classes);
  spec.padding = file.meta.padding == io::Padding::kSame ? Padding::Same : Padding::Torch;
  for (const io::BlockSpec& b : file.arch.blocks) {
    spec.blocks.push_back({static_cast<size_t>(b.cin), static_cast<size_t>(b.t), static_cast<size_t>(b.cout),
                           static_cast<size_t>(b.stride)});
  }
  return spec;
}

// Views into `file`'s arrays: the core copies (repacks) them while it is built.
ArrayMap array_views(const io::WeightFile& file) {
  ArrayMap views;
  for (const auto& [name, tensor] : file.arrays) {
    views[name] = {tensor.data.data(), std::vector<size_t>(tensor.shape.begin(), tensor.shape.end())};
  }
  return views;
}

}  // namespace

std::unique_ptr<Model> make_model(const io::WeightFile& file, const std::string& isa, std::size_t threads) {
  try {
    return std::make_unique<Model>(array_views(file), network_spec(file), isa, threads);
  } catch (const std::invalid_argument& e) {
    // The reader accepted the file, so this is a network the core does not run
    // (e.g. a width so small that block 0 gets a residual).
    throw Error(Status::kInvalidFormat, std::string("the engine cannot run this network: ") + e.what());
  }
}

}  // namespace mbv2::capi

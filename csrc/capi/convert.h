// The one place where a weight file the reader validated (io::WeightFile)
// becomes the core's Model.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/model.h"
#include "io/weight_file.h"

namespace mbv2::capi {

// The core model for a validated weight file. The core's kInvalidFormat
// refusals (a network it cannot run) say so; other errors pass unchanged. The
// model keeps no reference to `file`.
std::unique_ptr<Model> make_model(const io::WeightFile& file, const std::string& isa, std::size_t threads,
                                  const std::string& dtype);

}  // namespace mbv2::capi

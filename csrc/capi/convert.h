// The one place where the reader's types (io::WeightFile) become the core's
// (NetworkSpec, ArrayMap). The reader keeps its own small types so that it
// builds and is tested without the core (tests/cpp builds it standalone).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/model.h"
#include "io/weight_file.h"

namespace mbv2::capi {

// The core model for a validated weight file. Refusals of the core (a network
// it cannot run) become mbv2::Error kInvalidFormat; the ISA must already have
// been checked. The model keeps no reference to `file`.
std::unique_ptr<Model> make_model(const io::WeightFile& file, const std::string& isa, std::size_t threads);

}  // namespace mbv2::capi

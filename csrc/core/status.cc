#include "core/status.h"

namespace mbv2 {

const char* status_string(Status status) noexcept {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kInvalidArgument: return "invalid argument";
    case Status::kFileNotFound: return "file not found";
    case Status::kIoError: return "i/o error";
    case Status::kInvalidFormat: return "invalid format";
    case Status::kUnsupportedVersion: return "unsupported version";
    case Status::kUnsupportedIsa: return "unsupported isa";
    case Status::kOutOfMemory: return "out of memory";
    case Status::kInternal: return "internal error";
  }
  return "unknown status";
}

}  // namespace mbv2

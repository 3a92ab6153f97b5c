// Status codes and the one exception type of the C++ core.
//
// Every failure the core reports on purpose is a `mbv2::Error` carrying one of
// these codes and a message that names what was wrong and what was expected.
// The C API catches it at the boundary and turns it into a status code plus a
// last-error message, so no exception ever crosses into a C host.
#pragma once

#include <stdexcept>
#include <string>

namespace mbv2 {

enum class Status : int {
  kOk = 0,
  kInvalidArgument = 1,     // a NULL pointer, a wrong buffer length, a bad option
  kFileNotFound = 2,        // the weight file does not exist
  kIoError = 3,             // it exists but cannot be read
  kInvalidFormat = 4,       // not a valid mbv2-engine .npz (docs/format.md)
  kUnsupportedVersion = 5,  // written by a newer format version than this reader knows
  kUnsupportedIsa = 6,      // the requested instruction set is not available on this CPU
  kOutOfMemory = 7,
  kInternal = 8,            // a bug: an invariant of the engine itself did not hold
};

// A short, stable name for a status ("invalid format"), for messages and the C API.
const char* status_string(Status status) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}

  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

}  // namespace mbv2

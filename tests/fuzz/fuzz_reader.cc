// libFuzzer target: the weight-file reader (csrc/io) on any bytes. A refusal is an
// mbv2::Error; anything else (a crash, a sanitizer report, another exception, a
// leak) is a defect.
#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "io/weight_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mbv2::io::load_weight_file_from_memory(data, size);
  } catch (const mbv2::Error&) {
  }
  return 0;
}

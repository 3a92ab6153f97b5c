// libFuzzer target: the C API's front door on any bytes, as a host would call it:
// create from memory (reader, network checks, packing), and on success one run.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mbv2/mbv2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mbv2_engine_options options;
  mbv2_engine_options_init(&options);
  options.threads = 1;
  options.isa = "ref";
  mbv2_engine* engine = nullptr;
  if (mbv2_engine_create_from_memory(data, size, &options, &engine) != MBV2_STATUS_OK) return 0;
  size_t classes = 0;
  mbv2_engine_get_num_classes(engine, &classes);
  std::vector<float> x(3 * 32 * 32, 0.5f), out(classes);
  mbv2_engine_run(engine, x.data(), 1, 32, 32, MBV2_LAYOUT_NCHW, out.data(), out.size());
  mbv2_engine_destroy(engine);
  return 0;
}

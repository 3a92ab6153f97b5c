// Loading the input image into the arena, with the test that refuses NaN and
// infinite values.
#pragma once

#include <cstddef>

#include "core/common.h"
#include "ukernels/ukernels.h"

namespace mbv2 {

// The image, NHWC, padded with a zero column either side and a zero row after
// the last, so the stem kernel reads padding as ordinary pixels.
size_t padded_image_floats(size_t h, size_t w);
// Image rows [y0, y1) with their zero columns (and the zero row after the last
// when y1 = h), so a team loads the image in bands. False when a value read is
// NaN or infinite: ReLU6 would clamp it to a plausible number, so the caller
// must fail rather than return logits. The test reads each row right after
// its copy, in L1 (a few us per 224x224 image, where numpy's isfinite took 20).
// NCHW rows go through `load` (the ISA's kernel, ukernels.h), NHWC rows are copied.
bool load_padded_image(mbv2_load_ukernel_fn* load, const float* x, Layout layout, size_t h, size_t w, size_t y0,
                       size_t y1, float* dst);
// NaN and infinite values among x[0 .. n), for the error message.
size_t count_non_finite(const float* x, size_t n);

}  // namespace mbv2

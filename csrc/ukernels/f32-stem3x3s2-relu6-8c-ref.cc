// Scalar twin of the stem: full 3x3 stride-2 conv from the 3-channel image,
// 8 output channels per packed panel.
#include <cstring>

#include "ukernels/ref-common.h"
#include "ukernels/ukernels.h"

void mbv2_f32_stem3x3s2_relu6_ukernel_8c__ref(size_t wo, size_t nc, const float* const* rows, const float* w,
                                              float* out, size_t out_pixel_stride) {
  constexpr size_t nr = 8;
  constexpr size_t kc = 27;
  for (size_t n0 = 0; n0 < nc; n0 += nr, w += (kc + 1) * nr) {
    const size_t nn = std::min(nr, nc - n0);
    for (size_t x = 0; x < wo; x++) {
      float acc[nr];
      std::memcpy(acc, w, sizeof(acc));
      for (size_t ci = 0; ci < 3; ci++) {
        for (size_t ky = 0; ky < 3; ky++) {
          for (size_t kx = 0; kx < 3; kx++) {
            const float v = rows[ky][(x * 2 + kx) * 3 + ci];
            const float* wk = w + nr + (ci * 9 + ky * 3 + kx) * nr;
            for (size_t j = 0; j < nr; j++) acc[j] += v * wk[j];
          }
        }
      }
      for (size_t j = 0; j < nn; j++) out[x * out_pixel_stride + n0 + j] = mbv2::ref::relu6(acc[j]);
    }
  }
}

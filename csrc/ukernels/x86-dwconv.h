// Depthwise 3x3 + bias + ReLU6 for one output row, written once over a vector
// vocabulary S (x86-avx2.h, x86-avx512.h) and both strides. One channel tile
// is one vector: its bias and 9 taps stay in registers for the whole row.
#pragma once

#include <cstddef>

namespace mbv2::x86 {
namespace {

// All lanes of a vector, or the first few behind a mask (the last channel tile).
template <class S>
struct AllLanes {
  typename S::V load(const float* p) const { return S::load(p); }
  void store(float* p, typename S::V v) const { S::store(p, v); }
};
template <class S>
struct FirstLanes {
  typename S::Mask mask;
  typename S::V load(const float* p) const { return S::load(p, mask); }
  void store(float* p, typename S::V v) const { S::store(p, v, mask); }
};

template <class S, size_t Stride, class Lanes>
inline void dwconv3x3_channel_tile(size_t wo, const float* const* rows, size_t in_stride, const float* w, float* out,
                                   size_t out_stride, Lanes lanes) {
  const typename S::V vmin = S::zero(), vmax = S::set1(6.0f);
  typename S::V vk[10];  // bias, then taps (ky, kx) row-major; zero-padded, so always whole vectors
  for (size_t j = 0; j < 10; j++) vk[j] = S::load(w + j * S::kLanes);
  const float* i0 = rows[0];
  const float* i1 = rows[1];
  const float* i2 = rows[2];
  for (size_t x = 0; x < wo; x++) {
    typename S::V vacc = vk[0];
    for (size_t kx = 0; kx < 3; kx++) {
      vacc = S::fmadd(lanes.load(i0 + kx * in_stride), vk[1 + kx], vacc);
      vacc = S::fmadd(lanes.load(i1 + kx * in_stride), vk[4 + kx], vacc);
      vacc = S::fmadd(lanes.load(i2 + kx * in_stride), vk[7 + kx], vacc);
    }
    lanes.store(out + x * out_stride, S::clamp(vacc, vmin, vmax));
    i0 += Stride * in_stride;
    i1 += Stride * in_stride;
    i2 += Stride * in_stride;
  }
}

template <class S, size_t Stride>
inline void dwconv3x3_relu6(size_t wo, size_t channels, const float* const* rows, size_t in_stride, const float* w,
                            float* out, size_t out_stride) {
  constexpr size_t L = S::kLanes;
  size_t c0 = 0;
  for (; c0 + L <= channels; c0 += L, w += 10 * L) {
    const float* tile_rows[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    dwconv3x3_channel_tile<S, Stride>(wo, tile_rows, in_stride, w, out + c0, out_stride, AllLanes<S>());
  }
  if (c0 < channels) {
    const float* tile_rows[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    dwconv3x3_channel_tile<S, Stride>(wo, tile_rows, in_stride, w, out + c0, out_stride,
                                      FirstLanes<S>{S::mask(channels - c0)});
  }
}

}  // namespace
}  // namespace mbv2::x86

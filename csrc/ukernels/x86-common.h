// What the x86 kernel templates (x86-gemm.h, x86-dwconv.h) share: turning a
// run-time remainder into a compile-time tile size.
#pragma once

#include <cstddef>
#include <type_traits>

namespace mbv2::x86 {
namespace {

template <size_t N>
using Const = std::integral_constant<size_t, N>;

// Calls f(Const<n>()) for a run-time 1 <= n <= N, so remainders get tiles of
// their exact size instead of a general slow path.
template <size_t N, class F>
inline void with_const(size_t n, F f) {
  if constexpr (N > 1) {
    if (n < N) return with_const<N - 1>(n, f);
  }
  f(Const<N>());
}

}  // namespace
}  // namespace mbv2::x86

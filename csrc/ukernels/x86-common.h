// What the x86 kernel templates (x86-gemm.h, x86-dwconv.h) share: turning a
// run-time remainder into a compile-time tile size, and the register count
// that picks their loop shapes.
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

// The vocabulary's vector register count (S::kRegisters), 32 when it does not say.
template <class S, class = void>
struct vector_registers : Const<32> {};
template <class S>
struct vector_registers<S, std::void_t<decltype(S::kRegisters)>> : Const<S::kRegisters> {};

}  // namespace
}  // namespace mbv2::x86

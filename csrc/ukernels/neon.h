// The NEON kernels' one view of the intrinsics: <arm_neon.h> when compiling for
// AArch64, SIMDe's portable translation elsewhere, so the very same kernel
// sources also build on x86 for fast unit tests (tests/neon).
#pragma once

#if defined(__aarch64__)
#include <arm_neon.h>
#else
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#endif

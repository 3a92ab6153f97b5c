#!/usr/bin/env bash
# NEON tests (issue 4, item 5), called by .ci/run: the NEON kernels against their
# scalar twins natively through SIMDe, then the same test plus whole networks on
# the fused core cross-built for aarch64 and run by ctest under qemu-aarch64.
# Idempotent; a few minutes on 2 cores. See tests/neon/CMakeLists.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
jobs=${MBV2_JOBS:-2}

echo "== system packages (NEON)"
packages=(cmake ninja-build g++ python3 g++-aarch64-linux-gnu qemu-user libsimde-dev libgtest-dev)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

echo "== NEON kernels through SIMDe (native)"
cmake -S tests/neon -B build/neon-simde -G Ninja >/dev/null
cmake --build build/neon-simde -j"$jobs"
ctest --test-dir build/neon-simde --output-on-failure -j"$jobs"

echo "== NEON kernels and fused core, aarch64 under qemu"
cmake -S tests/neon -B build/neon-aarch64 -G Ninja -Wno-deprecated \
      -DCMAKE_TOOLCHAIN_FILE="$PWD/tests/neon/aarch64-toolchain.cmake" >/dev/null
cmake --build build/neon-aarch64 -j"$jobs"
ctest --test-dir build/neon-aarch64 --output-on-failure -j"$jobs"

#!/usr/bin/env bash
# The C++ side: the GoogleTest suites through ctest (reader, C API, C99 header,
# exported symbols), all of them again under AddressSanitizer + UBSan (with
# LeakSanitizer) and under ThreadSanitizer, a Python smoke test on an ASan
# build of the module, and examples/cpp_host built against the installed wheel
# through find_package.
# .ci/run calls it after `pip install ".[test]"`; a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=$(command -v python3)
JOBS=${JOBS:-2}
BUILD=${BUILD:-build/ci}
CONFIGURE=(-G Ninja -DMBV2_BUILD_TESTS=ON -DMBV2_BUILD_PYTHON=OFF -DPython3_EXECUTABLE="$PYTHON")
mkdir -p "$BUILD"

# run_ctest LOG COMMAND...: ctest's full output only when something failed, its summary line always.
run_ctest() {
  local log=$1
  shift
  if ! "$@" -j"$JOBS" --no-tests=error --output-on-failure >"$log" 2>&1; then
    cat "$log"
    exit 1
  fi
  grep "tests passed" "$log"
}

echo "== C++ tests"
cmake -S . -B "$BUILD/tests" "${CONFIGURE[@]}" >/dev/null
cmake --build "$BUILD/tests" -j"$JOBS" >/dev/null
run_ctest "$BUILD/ctest.log" ctest --test-dir "$BUILD/tests"

# sanitized_build DIR FLAGS [CMAKE ARGS...]: the tree configured and built with FLAGS on every target.
sanitized_build() {
  local dir=$1 flags=$2
  shift 2
  cmake -S . -B "$dir" "$@" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
      -DCMAKE_MODULE_LINKER_FLAGS="$flags" >/dev/null
  cmake --build "$dir" -j"$JOBS" >/dev/null
}

echo "== every C++ test under AddressSanitizer, UBSan and LeakSanitizer"
ASAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
sanitized_build "$BUILD/asan" "$ASAN" "${CONFIGURE[@]}"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_ctest "$BUILD/asan.log" ctest --test-dir "$BUILD/asan"

echo "== a Python smoke test (load, run, classify, a refused file) on an ASan build of the module"
# A copy of the package's Python sources, with the sanitized module built into it.
ASAN_PKG=$(realpath -m "$BUILD/asan-pkg")
rm -rf "$ASAN_PKG" && mkdir -p "$ASAN_PKG"
cp -r mbv2_engine "$ASAN_PKG/"
rm -f "$ASAN_PKG"/mbv2_engine/*.so
sanitized_build "$BUILD/asan-py" "$ASAN" -G Ninja -DMBV2_BUILD_PYTHON=ON -DMBV2_BUILD_TEST_HOOKS=OFF \
    -DPython_EXECUTABLE="$PYTHON" -DMBV2_MODULE_DIR="$ASAN_PKG/mbv2_engine"
# Python itself is not instrumented: the ASan runtime goes first (libstdc++ with it, or
# its __cxa_throw interceptor finds nothing to wrap), and Python's own allocations at
# exit are not leaks of ours.
LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    PYTHONPATH="$ASAN_PKG" "$PYTHON" .ci/asan_smoke.py "$BUILD/tests/tests/cpp/npz_fixtures"

echo "== every C++ test under ThreadSanitizer"
# TSan's shadow memory needs a fixed layout: kernels with wide mmap randomisation break it.
sanitized_build "$BUILD/tsan" -fsanitize=thread "${CONFIGURE[@]}"
TSAN_OPTIONS=halt_on_error=1 run_ctest "$BUILD/tsan.log" setarch "$(uname -m)" -R ctest --test-dir "$BUILD/tsan"

echo "== examples/cpp_host against the installed wheel"
# From outside the tree, so Python imports the installed package, not ./mbv2_engine.
CMAKE_DIR=$(cd / && "$PYTHON" -m mbv2_engine --cmake-dir)
cmake -S examples/cpp_host -B "$BUILD/cpp_host" -G Ninja -DCMAKE_PREFIX_PATH="$CMAKE_DIR" >/dev/null
cmake --build "$BUILD/cpp_host" >/dev/null
"$PYTHON" -c "import sys; sys.stdout.buffer.write(b'P6 96 80 255\n' + bytes(range(256)) * 90)" >"$BUILD/picture.ppm"
"$BUILD/cpp_host/cpp_host" "$BUILD/tests/tests/cpp/npz_fixtures/valid_0.35_compressed.npz" "$BUILD/picture.ppm"
echo "(top-5 parity with the Python engine: tests/test_cmake_package.py)"

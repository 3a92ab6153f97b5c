#!/usr/bin/env bash
# The C++ side: the GoogleTest suites through ctest (reader, C API, C99 header,
# exported symbols), the thread-safety test under ThreadSanitizer, and
# examples/cpp_host built against the installed wheel through find_package.
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

echo "== thread safety under ThreadSanitizer"
TSAN=-fsanitize=thread
cmake -S . -B "$BUILD/tsan" "${CONFIGURE[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS=$TSAN \
    -DCMAKE_C_FLAGS=$TSAN -DCMAKE_EXE_LINKER_FLAGS=$TSAN -DCMAKE_SHARED_LINKER_FLAGS=$TSAN >/dev/null
cmake --build "$BUILD/tsan" -j"$JOBS" --target test_capi_threads test_thread_pool >/dev/null
# TSan's shadow memory needs a fixed layout: kernels with wide mmap randomisation break it.
TSAN_OPTIONS=halt_on_error=1 run_ctest "$BUILD/tsan.log" setarch "$(uname -m)" -R \
    ctest --test-dir "$BUILD/tsan" -R "CApiThreads|ThreadPool"

echo "== examples/cpp_host against the installed wheel"
# From outside the tree, so Python imports the installed package, not ./mbv2_engine.
CMAKE_DIR=$(cd / && "$PYTHON" -m mbv2_engine --cmake-dir)
cmake -S examples/cpp_host -B "$BUILD/cpp_host" -G Ninja -DCMAKE_PREFIX_PATH="$CMAKE_DIR" >/dev/null
cmake --build "$BUILD/cpp_host" >/dev/null
"$PYTHON" -c "import sys; sys.stdout.buffer.write(b'P6 96 80 255\n' + bytes(range(256)) * 90)" >"$BUILD/picture.ppm"
"$BUILD/cpp_host/cpp_host" "$BUILD/tests/tests/cpp/npz_fixtures/valid_0.35_compressed.npz" "$BUILD/picture.ppm"
echo "(top-5 parity with the Python engine: tests/test_cmake_package.py)"

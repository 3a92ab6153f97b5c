#!/usr/bin/env bash
# Fuzzing (issue 18), called by .ci/run after the package is installed: libFuzzer
# targets for the weight-file reader and the C API (clang, ASan + UBSan), and the
# atheris target for the Python front doors (tests/fuzz), each from a seed corpus
# of valid files, for a bounded number of runs with a fixed seed (the same inputs
# every time, so a red run is a real finding: its input is saved under
# $BUILD/artifacts). Any crash, sanitizer report, leak or uncaught exception fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
JOBS=${JOBS:-2}
BUILD=${BUILD:-build/fuzz}
RUNS_READER=${RUNS_READER:-100000}
RUNS_CAPI=${RUNS_CAPI:-40000}
RUNS_PYTHON=${RUNS_PYTHON:-12000}

echo "== system packages (fuzzing)"
# Always asked for: a machine can have clang without its sanitizer and libFuzzer
# runtimes, which Debian ships apart (libclang-rt-dev) and only recommends.
apt-get update -qq
apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null

echo "== libFuzzer targets (clang, ASan + UBSan)"
cmake -S tests/fuzz -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$BUILD" -j"$JOBS" >/dev/null 2>&1 || cmake --build "$BUILD" -j1

echo "== seed corpora"
# Run as scripts, so the installed package is imported (their folder, not the root, is on sys.path).
SEEDS=$(realpath -m "$BUILD/seeds")
python3 tests/fuzz/make_seeds.py "$SEEDS"
mkdir -p "$BUILD/artifacts"

# fuzz NAME COMMAND...: a fresh corpus each run, the seeds read-only beside it.
fuzz() {
  local name=$1
  shift
  rm -rf "$BUILD/corpus-$name" && mkdir -p "$BUILD/corpus-$name"
  echo "-- $name"
  "$@" -seed=1 -rss_limit_mb=4096 -artifact_prefix="$BUILD/artifacts/$name-" "$BUILD/corpus-$name" \
      2>"$BUILD/$name.log" || { tail -40 "$BUILD/$name.log"; exit 1; }
  grep -E "^Done [0-9]+ runs" "$BUILD/$name.log"
}

echo "-- the inputs that found defects, replayed under the sanitizers"
for target in reader capi; do
  "$BUILD/fuzz_$target" tests/fuzz/regressions/reader-* >"$BUILD/replay-$target.log" 2>&1 || {
    cat "$BUILD/replay-$target.log"; exit 1; }
done

fuzz reader "$BUILD/fuzz_reader" -runs="$RUNS_READER" -max_len=300000 "$SEEDS/reader"
fuzz capi "$BUILD/fuzz_capi" -runs="$RUNS_CAPI" -max_len=1700000 "$SEEDS/capi"
echo "== atheris target (the Python front doors)"
fuzz python python3 tests/fuzz/fuzz_python.py -runs="$RUNS_PYTHON" -max_len=2300000 "$SEEDS/python"

#!/usr/bin/env bash
# tools/sanitize.sh — build fastdl._core with AddressSanitizer + UBSan and run the kernel tests under it.
#
# Usage (from anywhere; needs gcc, cmake, network access to PyPI the first time):
#     tools/sanitize.sh                 # build into /tmp/san_venv, run the kernel test subset
#     SAN_VENV=/path/venv SAN_BUILD=/path/build tools/sanitize.sh
#     tools/sanitize.sh tests/backends/test_matmul.py -k trans   # extra args go to pytest instead of the subset
#
# What it does:
#   1. makes a throwaway venv ($SAN_VENV, default /tmp/san_venv) with numpy, pybind11,
#      scikit-build-core, pytest and hypothesis (never touches the project's own venv);
#   2. builds and installs fastdl there (NOT editable) with -C cmake.define.FASTDL_SANITIZE=ON, using its
#      own build dir ($SAN_BUILD, default /tmp/san_build) so the editable build in build/ is left alone;
#      Debug build type with -O1 -g1 (ASan's recommended level; compiles ~3x faster than -O3 and still
#      gives file:line stack traces);
#   3. runs the C++ kernel tests (tests/kernels/), the cpu backend against the reference (tests/backends/:
#      test_matmul.py test_softmax.py test_conv.py test_rnn.py), the bad-input catalogue (tests/system/test_errors.py)
#      and the thread-runtime tests (tests/system/test_thread_runtime.py, test_threads.py)
#      from outside the checkout (so the sanitized installed copy is imported, not the source tree),
#      with LD_PRELOAD=libasan+libubsan (Python itself is not instrumented), ASAN_OPTIONS=detect_leaks=0
#      (CPython leaks by design at exit) and UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1;
#   4. fails (exit 1) if pytest fails OR any sanitizer wrote a report (reports go to $SAN_BUILD/reports.*).
# Takes about 3-6 minutes on 2 cores (most of it the instrumented build).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SAN_VENV="${SAN_VENV:-/tmp/san_venv}"
SAN_BUILD="${SAN_BUILD:-/tmp/san_build}"
PY="${PYTHON:-python3}"

echo "== fastdl sanitizer run: repo $REPO, venv $SAN_VENV, build $SAN_BUILD"
if [ ! -x "$SAN_VENV/bin/python" ]; then
    "$PY" -m venv "$SAN_VENV"
fi
"$SAN_VENV/bin/python" -m pip install -q --upgrade pip
"$SAN_VENV/bin/python" -m pip install -q numpy pybind11 scikit-build-core pytest hypothesis

echo "== building fastdl._core with FASTDL_SANITIZE=ON"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
"$SAN_VENV/bin/python" -m pip install -q --no-build-isolation --no-deps --force-reinstall \
    -C cmake.define.FASTDL_SANITIZE=ON -C cmake.build-type=Debug -C "cmake.define.CMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
    -C build-dir="$SAN_BUILD/cmake" "$REPO"

LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
for lib in "$LIBASAN" "$LIBUBSAN"; do
    [ -f "$lib" ] || { echo "sanitize.sh: $lib not found (install gcc's libasan/libubsan)"; exit 2; }
done

if [ "$#" -gt 0 ]; then
    TESTS=("$@")
else
    TESTS=(tests/kernels tests/backends/test_matmul.py tests/backends/test_softmax.py tests/backends/test_conv.py
           tests/backends/test_rnn.py tests/system/test_errors.py tests/system/test_thread_runtime.py
           tests/system/test_threads.py)
fi
ABS_TESTS=()
for t in "${TESTS[@]}"; do
    case "$t" in /*) ABS_TESTS+=("$t") ;; *) ABS_TESTS+=("$REPO/$t") ;; esac
done

rm -f "$SAN_BUILD"/reports.*
cd "$SAN_BUILD"   # outside the checkout: `import fastdl` must find the sanitized installed copy
env LD_PRELOAD="$LIBASAN $LIBUBSAN" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$SAN_BUILD/reports" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$SAN_BUILD/reports" \
    FASTDL_BACKEND=cpu \
    "$SAN_VENV/bin/python" -c "import fastdl, fastdl._core as c; print('== testing', fastdl.__file__, c.__file__)"
set +e
env LD_PRELOAD="$LIBASAN $LIBUBSAN" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$SAN_BUILD/reports" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$SAN_BUILD/reports" \
    FASTDL_BACKEND=cpu \
    "$SAN_VENV/bin/pytest" -q -p no:cacheprovider --rootdir="$REPO" "${ABS_TESTS[@]}"
status=$?
set -e

if compgen -G "$SAN_BUILD/reports.*" > /dev/null; then
    echo "== sanitizer reports:"
    cat "$SAN_BUILD"/reports.*
    echo "sanitize.sh: FAILED (sanitizer reported errors)"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "sanitize.sh: FAILED (pytest exit status $status)"
    exit 1
fi
echo "sanitize.sh: OK (no ASan/UBSan reports, tests passed)"

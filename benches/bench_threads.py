"""Two Python threads calling single-threaded cpu kernels vs one thread doing all the calls.

The bindings release the GIL around every C++ kernel, so the two threads should finish sooner.
Run: ``pytest benches/bench_threads.py -s`` (prints the measured ratio).
"""

import os
import threading
import time

import numpy as np
import pytest

import fastdl
from fastdl import backend, kernels

pytestmark = pytest.mark.skipif(not backend.cpu_available(), reason="the C++ extension fastdl._core is not built")


def _timed(calls_per_thread, n_threads, a, b):
    def work():
        with fastdl.use_backend("cpu"):
            for _ in range(calls_per_thread):
                kernels.matmul(a, b)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def test_two_threads_beat_one_thread_serial():
    """Two threads x k single-threaded matmuls vs one thread doing all 2k: the GIL is released."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2:
        pytest.skip(f"needs 2 cores to run two kernels at once, this machine gives us {cores}")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256))
    b = rng.standard_normal((256, 256))
    before = fastdl.get_num_threads()
    fastdl.set_num_threads(1)
    ratios = []
    try:
        with fastdl.use_backend("cpu"):
            kernels.matmul(a, b)  # warm-up
            start = time.perf_counter()
            kernels.matmul(a, b)
            one = time.perf_counter() - start
        k = max(2, min(200, int(0.15 / max(one, 1e-4))))  # about 0.3 s of serial work per measurement
        for _ in range(5):
            serial = _timed(2 * k, 1, a, b)
            parallel = _timed(k, 2, a, b)
            ratios.append(serial / parallel)
            if ratios[-1] > 1.3:
                break
    finally:
        fastdl.set_num_threads(before)
    best = max(ratios)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"\nthreads: serial/parallel speedup of two threads = {best:.2f}x "
          f"(tries {', '.join(f'{r:.2f}' for r in ratios)}; {k} matmuls 256x256 per thread; "
          f"{cores} cores, load average {load:.2f})")
    assert best > 1.1, f"two threads were not faster than one ({ratios}); is the GIL released around kernels?"

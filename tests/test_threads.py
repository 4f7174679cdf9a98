"""Python threads and the cpu kernels: correct results under concurrency, and real parallelism.

The bindings release the GIL around every C++ kernel, so two Python threads each running a
single-threaded kernel (``fastdl.set_num_threads(1)``) should finish sooner than one thread running
both calls back to back. The measured ratio is printed (run with ``-s`` to see it).
"""

import os
import threading
import time

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from conftest import ACCELERATED

pytestmark = pytest.mark.skipif("cpu" not in ACCELERATED, reason="the C++ extension fastdl._core is not built")


def _jobs(rng):
    """(kernel name, args, kwargs) triples of assorted sizes and dtypes."""
    jobs = []
    for i, dtype in enumerate([np.float32, np.float64] * 3):
        n = 17 + 13 * i
        x = rng.standard_normal((n, 40)).astype(dtype)
        w = rng.standard_normal((40, 23)).astype(dtype)
        b = rng.standard_normal(23).astype(dtype)
        g = rng.standard_normal((n, 23)).astype(dtype)
        jobs += [("matmul", (x, w), {}), ("matmul", (x, x), {"trans_a": True}),
                 ("linear", (x, w, b, "tanh"), {}), ("linear_backward", (x, w, np.tanh(g), g, "tanh"), {}),
                 ("activation", (x, "sigmoid"), {}),
                 ("softmax_cross_entropy", (g, rng.integers(0, 23, n)), {}),
                 ("cross_entropy", (g, rng.integers(0, 23, n)), {})]
    return jobs


def _run(name, args, kwargs):
    out = getattr(kernels, name)(*args, **kwargs)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("threads_per_kernel", [1, 2])
def test_concurrent_calls_match_reference(threads_per_kernel):
    """Four threads run every job 5 times in different orders. Each result must equal, bit for bit, the
    same job run alone (the cpu kernels are deterministic), and that one must match the reference."""
    rng = np.random.default_rng(11)
    jobs = _jobs(rng)
    errors = []
    before = fastdl.get_num_threads()
    fastdl.set_num_threads(threads_per_kernel)
    try:
        with fastdl.use_backend("numpy"):
            reference = [_run(*job) for job in jobs]
        with fastdl.use_backend("cpu"):
            alone = [_run(*job) for job in jobs]
        for job, got, want in zip(jobs, alone, reference):
            tol = 1e-4 if job[1][0].dtype == np.float32 else 1e-8  # losses are Python floats: use the input's
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"{job[0]} against the reference")

        def worker(seed):
            order = np.random.default_rng(seed).permutation(len(jobs))
            try:
                with fastdl.use_backend("cpu"):
                    for _ in range(5):
                        for j in order:
                            for got, want in zip(_run(*jobs[j]), alone[j]):
                                np.testing.assert_array_equal(got, want, err_msg=f"{jobs[j][0]} in thread {seed}")
            except Exception as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        fastdl.set_num_threads(before)
    assert not errors, errors[0]


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
    if best <= 1.1 and load > cores - 1:
        pytest.skip(f"machine overloaded (load average {load:.2f} on {cores} cores): measured only {best:.2f}x")
    assert best > 1.1, f"two threads were not faster than one ({ratios}); is the GIL released around kernels?"

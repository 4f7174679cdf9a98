"""Python threads and the cpu kernels: correct results under concurrency.

(The speed-up of two threads over one, which shows the GIL is released, is measured in
benches/bench_threads.py: timings do not belong in unit tests on a shared machine.)
"""

import threading

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

"""fastdl's thread runtime: fixed results whoever runs the tasks, a worker that never shows up, fork,
thread control (set_num_threads, threads(), OMP_NUM_THREADS, threadpoolctl) and its bad input."""

import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from conftest import ACCELERATED

pytestmark = pytest.mark.skipif("cpu" not in ACCELERATED, reason="the C++ extension fastdl._core is not built")


def _workload(seed=0):
    """Every threaded kernel family on shapes big enough to be split over 2 threads, with tails."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((131, 257)).astype(np.float32)
    b = rng.standard_normal((257, 97)).astype(np.float32)
    x = rng.standard_normal((5, 3, 19, 17)).astype(np.float32)
    w = rng.standard_normal((3, 8, 3, 3)).astype(np.float32)
    w5 = rng.standard_normal((3, 6, 5, 5)).astype(np.float32)
    xs = rng.standard_normal((7, 9, 13))
    h0 = rng.standard_normal((7, 48))
    c0 = rng.standard_normal((7, 48))
    wl = rng.standard_normal((13 + 48, 4 * 48)) * 0.2
    bl = rng.standard_normal(4 * 48)
    logits = rng.standard_normal((301, 67)).astype(np.float32)
    labels = rng.integers(0, 67, 301)

    def run():
        out = [kernels.matmul(a, b), kernels.matmul(a, a, trans_a=True),
               kernels.linear(a, b, rng_free_bias, "tanh")]
        out += list(kernels.linear_backward(a, b, np.tanh(out[0]), out[0], "tanh"))
        y = kernels.conv2d(x, w)
        out += [y, *kernels.conv2d_backward(x, w, y), kernels.conv2d(x, w5, stride=2)]
        out += list(kernels.conv2d_backward(x, w5, kernels.conv2d(x, w5, stride=2), stride=2))
        h_seq, c_last, cache = kernels.lstm_forward(xs, h0, c0, wl, bl)
        out += [h_seq, c_last, *kernels.lstm_backward(h_seq, cache)]
        out += list(kernels.softmax_cross_entropy(logits, labels))
        out += [kernels.activation(logits, "sigmoid"), kernels.dropout(logits, 0.8, 7)[0]]
        return [np.asarray(o) for o in out]

    rng_free_bias = np.linspace(-1, 1, 97).astype(np.float32)
    return run


def _same(got, want):
    return len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))


@pytest.fixture
def cpu_backend():
    before = fastdl.get_num_threads()
    with fastdl.use_backend("cpu"):
        yield
    fastdl.set_num_threads(before)


def test_same_thread_count_same_bits_run_after_run(cpu_backend):
    run = _workload()
    fastdl.set_num_threads(2)
    first = run()
    for _ in range(5):
        assert _same(run(), first)


def test_one_and_two_threads_agree(cpu_backend):
    run = _workload(1)
    with fastdl.threads(1):
        one = run()
    with fastdl.threads(2):
        two = run()
    assert _same(one, two)


def test_a_worker_that_sleeps_changes_nothing_and_is_not_waited_for(cpu_backend):
    """Worker 1 sleeps 3 s before it claims work each time it wakes: the caller does every task itself,
    gets the same bits, and does not wait for the sleeper."""
    from fastdl import _core

    run = _workload(2)
    fastdl.set_num_threads(2)
    want = run()
    delay = 3.0
    _core._set_worker_delay_us(int(delay * 1e6))
    try:
        start = time.perf_counter()
        got = run()
        elapsed = time.perf_counter() - start
    finally:
        _core._set_worker_delay_us(0)
    assert _same(got, want)
    assert elapsed < delay / 2, f"the calls took {elapsed:.2f} s: they waited for the sleeping worker"


def _child_runs_kernels(queue):
    queue.put([a.tobytes() for a in _workload(3)()])


def test_fork_child_runs_kernels(cpu_backend):
    """The parent's pool has running workers; a forked child gets none of them and must not hang."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform has no fork()")
    fastdl.set_num_threads(2)
    want = [a.tobytes() for a in _workload(3)()]  # the parent's pool is up
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_runs_kernels, args=(queue,))
    child.start()
    try:
        got = queue.get(timeout=60)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert got == want


def test_kernels_called_from_many_threads_inside_one_call(cpu_backend):
    """Kernels called from the threads of another library's pool (here Python's): each call runs on the
    pool or on its own thread, never more, and every result is the same."""
    from concurrent.futures import ThreadPoolExecutor

    run = _workload(4)
    fastdl.set_num_threads(2)
    want = run()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: run(), range(8)))
    assert all(_same(r, want) for r in results)


def test_threads_context_restores_the_count_also_on_error(cpu_backend):
    fastdl.set_num_threads(2)
    with fastdl.threads(1):
        assert fastdl.get_num_threads() == 1
    assert fastdl.get_num_threads() == 2
    with pytest.raises(KeyError):
        with fastdl.threads(3):
            assert fastdl.get_num_threads() == 3
            raise KeyError("inside")
    assert fastdl.get_num_threads() == 2


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (257, ValueError), (2.5, TypeError),
                                        ("two", TypeError), (True, TypeError), (None, TypeError)])
def test_bad_thread_counts_raise_and_change_nothing(cpu_backend, bad, error):
    fastdl.set_num_threads(2)
    with pytest.raises(error, match=r"set_num_threads: n must be"):
        fastdl.set_num_threads(bad)
    with pytest.raises(error, match=r"threads: n must be"):
        fastdl.threads(bad)
    assert fastdl.get_num_threads() == 2


def test_omp_num_threads_sets_the_default(tmp_path):
    """In a fresh process (run outside the checkout, so that it imports the installed, compiled fastdl)."""
    code = "import fastdl, fastdl._core; print(fastdl.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_threadpoolctl_sees_and_limits_the_pool(cpu_backend):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not hasattr(threadpoolctl, "register"):
        pytest.skip(f"threadpoolctl {threadpoolctl.__version__} cannot register controllers (3.5 and later can)")
    fastdl.set_num_threads(2)
    info = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "fastdl"]
    assert len(info) == 1 and info[0]["num_threads"] == 2 and info[0]["version"] == fastdl.__version__
    with threadpoolctl.threadpool_limits(1):
        assert fastdl.get_num_threads() == 1
    assert fastdl.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="fastdl"):
        assert fastdl.get_num_threads() == 1
    assert fastdl.get_num_threads() == 2

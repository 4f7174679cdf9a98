"""fastdl taking turns with NumPy (and PyTorch, when installed) in one loop, and the book's loop with
fastdl, NumPy or mixed layers (fastdl/cli/bench_mixed.py builds the cases).

Run: ``pytest benches/bench_mixed.py --benchmark-only``. Each pair group holds three entries, timed as
blocks of ``k`` calls: the fastdl call alone and the rival call alone, each block after a 0.2 s pause
(so the other library's spinning threads are gone), and the two taking turns, ``k`` times each, with
no pause (what a mixed loop does). The turns entry's ``extra_info`` has ``ideal_over_turns`` =
(t_fastdl + t_rival) / t_turns from the medians: 1.0 means no slowdown from taking turns. Each network
group holds the book loop's variants, blocks of training steps after a pause.
"""

import time

import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.cli.bench_mixed import network_cases, pair_cases, seconds_per_call

pytestmark = pytest.mark.skipif(not backend.cpu_available(), reason="the C++ extension fastdl._core is not built")

ROLES = ("fastdl alone", "rival alone", "taking turns")
PAUSE = 0.2
BLOCK_SECONDS = 0.1  # long enough that the first call after a pause (threads waking up) does not count
ROUNDS = 9
STEPS_PER_BLOCK = {"MLP": 60, "CNN": 15}  # the same for every variant of a network: one group, comparable

_built = {}
_block_medians = {}


def _built_pair(case):
    key = (case.work, case.rival)
    if key not in _built:
        with fastdl.use_backend("cpu"):
            f, g, rival = case.make()
            k = max(3, int(BLOCK_SECONDS / max(seconds_per_call(lambda: (f(), g())), 1e-7)))
        _built[key] = (f, g, rival, k)
    return _built[key]


def _block(call, k):
    def run():
        for _ in range(k):
            call()
    return run


@pytest.mark.parametrize("case, role", [(c, r) for c in pair_cases() for r in ROLES],
                         ids=lambda v: v if isinstance(v, str) else f"{v.work} | {v.rival}")
def test_pair(benchmark, case, role):
    f, g, rival, k = _built_pair(case)
    group = f"{case.work} | {rival} (blocks of {k})"
    benchmark.group = group
    with fastdl.use_backend("cpu"):
        if role == "taking turns":
            benchmark.pedantic(_block(lambda: (f(), g()), k), rounds=ROUNDS, warmup_rounds=1)
        else:
            call = f if role == "fastdl alone" else g
            benchmark.pedantic(_block(call, k), setup=lambda: time.sleep(PAUSE), rounds=ROUNDS, warmup_rounds=1)
    if benchmark.stats is None:
        return
    _block_medians[(group, role)] = benchmark.stats.stats.median
    benchmark.extra_info["ms_per_call"] = round(benchmark.stats.stats.median / k * 1e3, 4)
    if role == "taking turns" and all((group, r) in _block_medians for r in ROLES[:2]):
        ideal = _block_medians[(group, ROLES[0])] + _block_medians[(group, ROLES[1])]
        benchmark.extra_info["ideal_over_turns"] = round(ideal / _block_medians[(group, role)], 3)
        if case.flop:
            benchmark.extra_info["turns_gflops"] = round(case.flop * k / _block_medians[(group, role)] / 1e9, 1)


@pytest.mark.parametrize("network, layers, build", network_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_book_loop_step(benchmark, network, layers, build):
    with fastdl.use_backend("cpu"):
        loop, X, y = build()
        for _ in range(3):
            loop.train_step(X, y)
        k = STEPS_PER_BLOCK[network.split()[0]]
        benchmark.group = f"{network} (blocks of {k} steps)"
        benchmark.pedantic(_block(lambda: loop.train_step(X, y), k), setup=lambda: time.sleep(PAUSE), rounds=ROUNDS,
                           warmup_rounds=1)
    if benchmark.stats is not None:
        benchmark.extra_info["ms_per_step"] = round(benchmark.stats.stats.median / k * 1e3, 4)
        assert np.isfinite(loop.train_step(X, y))

"""No leaks: thousands of repeated kernel and layer calls after a warm-up keep peak RSS flat.

Each check runs in a fresh subprocess and reads ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on
Linux) after a warm-up and again after 3,000 more rounds of calls; the growth must stay under 20 MB:
one small leaked array per kernel call (about 36,000 calls, e.g. a reference never released in
the bindings) would exceed it.
It runs on the cpu backend (the numpy one when the extension is not built); the layer calls go through
the same kernels.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ACCELERATED

LIMIT_MB = 20.0
CALLS = 3000

SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import fastdl
    from fastdl import kernels as K
    from fastdl.activations import Tanh
    from fastdl.layers import Conv2D, Dense
    from fastdl.losses import SoftmaxCrossEntropy
    from fastdl.network import NeuralNetwork

    fastdl.set_backend(sys.argv[1])
    calls = int(sys.argv[2])
    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s)
    x, w, b, g = r(16, 24), r(24, 12), r(12), r(16, 12)
    labels = rng.integers(0, 12, 16)
    xs, h0, c0, wl, bl, gs = r(2, 4, 3), r(2, 5), r(2, 5), r(8, 20), r(20), r(2, 4, 5)
    ci, cw, cg = r(2, 2, 6, 6), r(2, 3, 3, 3), r(2, 3, 6, 6)
    net = NeuralNetwork([Dense(8, Tanh()), Dense(4)], loss=SoftmaxCrossEntropy(), seed=1)
    xb, yb = r(8, 6).astype(np.float32), np.eye(4, dtype=np.float32)[np.arange(8) % 4]
    conv = Conv2D(2, 3, dtype=np.float64)

    def one_round(i):
        y = K.linear(x, w, b, "relu")
        K.linear_backward(x, w, y, g, "relu")
        K.matmul(x, w)
        K.matmul(x, x, trans_a=True)
        K.activation_backward(K.activation(x, "sigmoid"), x, "sigmoid")
        K.softmax_cross_entropy(g, labels)
        K.cross_entropy(g, labels)
        if i % 10 == 0:  # the pure-Python / reference families are slower: fewer calls
            K.conv2d_backward(ci, cw, cg)
            h_seq, c_last, cache = K.lstm_forward(xs, h0, c0, wl, bl)
            K.lstm_backward(gs, cache, c_last)
        net.train_batch(xb, yb)
        if i % 10 == 0:
            conv.backward(conv.forward(ci))
        try:  # error paths must not leak either
            K.matmul(x, x)
        except ValueError:
            pass

    for i in range(300):
        one_round(i)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(calls):
        one_round(i)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after, "growth_mb": (after - before) / 1024.0}))
""")


@pytest.mark.parametrize("backend", ["cpu"] if "cpu" in ACCELERATED else ["numpy"])
def test_repeated_calls_do_not_grow_rss(backend):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, backend, str(CALLS)], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(__file__))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{backend}: peak RSS {result['before_kb'] / 1024:.1f} MB -> {result['after_kb'] / 1024:.1f} MB "
          f"over {CALLS} rounds (growth {result['growth_mb']:.2f} MB)")
    assert result["growth_mb"] < LIMIT_MB, result

"""Property tests (hypothesis): accelerated backends agree with the reference on random shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ACCELERATED
from helpers import check_op

pytestmark = pytest.mark.skipif(not ACCELERATED, reason="no accelerated backend to compare")

dims = st.sampled_from([1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 32, 33, 64, 97])
dtypes = st.sampled_from([np.float32, np.float64])
activations = st.sampled_from(["linear", "sigmoid", "tanh", "relu"])


@settings(max_examples=40, deadline=None)
@given(m=dims, k=dims, n=dims, trans_a=st.booleans(), trans_b=st.booleans(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_matmul_property(m, k, n, trans_a, trans_b, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    for name in ACCELERATED:
        check_op("matmul", (a, b), name, {"trans_a": trans_a, "trans_b": trans_b}, dtype, scale=np.sqrt(k))


@settings(max_examples=30, deadline=None)
@given(n=dims, i=dims, o=dims, act=activations, dtype=dtypes, seed=st.integers(0, 2**16))
def test_linear_property(n, i, o, act, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, i)).astype(dtype)
    w = rng.standard_normal((i, o)).astype(dtype)
    b = rng.standard_normal((1, o)).astype(dtype)
    grad = rng.standard_normal((n, o)).astype(dtype)
    for name in ACCELERATED:
        y, _ = check_op("linear", (x, w, b, act), name, dtype=dtype, scale=np.sqrt(i))
        check_op("linear_backward", (x, w, np.asarray(y), grad, act), name, dtype=dtype, scale=np.sqrt(max(n, i, o)))

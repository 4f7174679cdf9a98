"""rnn / lstm / gru sequence kernels on every accelerated backend against the reference."""

import pytest

from helpers import check_sequence_op, random

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("batch,steps,features,hidden", [(1, 1, 1, 1), (3, 5, 7, 4), (2, 9, 13, 11), (4, 3, 62, 16)])
def test_sequence(backend_name, dtype, rng, family, batch, steps, features, hidden):
    x = random(rng, (batch, steps, features), dtype)
    h0 = random(rng, (batch, hidden), dtype) * 0.5
    w = random(rng, (features + hidden, GATES[family] * hidden), dtype) * 0.3
    b = random(rng, (GATES[family] * hidden,), dtype) * 0.1
    args = (x, h0, random(rng, (batch, hidden), dtype), w, b) if family == "lstm" else (x, h0, w, b)
    grads = [random(rng, (batch, steps, hidden), dtype)]
    if family == "lstm":
        grads.append(random(rng, (batch, hidden), dtype))
    check_sequence_op(family, args, grads, backend_name, dtype)

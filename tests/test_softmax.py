"""softmax_cross_entropy / cross_entropy on every accelerated backend against the reference."""

import numpy as np
import pytest

from helpers import check_op, random


def _targets(rng, batch, classes, dtype, kind):
    labels = rng.integers(0, classes, size=batch)
    if kind == "labels":
        return labels.astype(np.int32)
    return np.eye(classes, dtype=dtype)[labels]


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "cross_entropy"])
@pytest.mark.parametrize("batch,classes", [(1, 1), (1, 7), (5, 10), (33, 129), (64, 1000)])
@pytest.mark.parametrize("kind", ["onehot", "labels"])
def test_loss_and_grad(backend_name, dtype, rng, name, batch, classes, kind):
    logits = random(rng, (batch, classes), dtype) * 3
    check_op(name, (logits, _targets(rng, batch, classes, dtype, kind)), backend_name, dtype=dtype)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "cross_entropy"])
@pytest.mark.parametrize("fill", [1e4, -1e4, -1e30, 0.0])
def test_extreme_logits(backend_name, dtype, rng, name, fill):
    logits = random(rng, (4, 6), dtype)
    logits[:, 2] = fill
    logits[1] = fill  # a row of equal values
    (loss, grad), _ = check_op(name, (logits, np.array([2, 0, 5, 1])), backend_name, dtype=dtype)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))

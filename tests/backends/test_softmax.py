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


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "cross_entropy"])
def test_sum_reduction_is_mean_times_batch(backend_name, rng, name):
    logits = random(rng, (6, 9), np.float64)
    labels = rng.integers(0, 9, size=6)
    (loss_sum, grad_sum), _ = check_op(name, (logits, labels), backend_name, {"reduction": "sum"})
    (loss_mean, grad_mean), _ = check_op(name, (logits, labels), backend_name)
    np.testing.assert_allclose(loss_sum, 6 * loss_mean, rtol=1e-12)
    np.testing.assert_allclose(grad_sum, 6 * grad_mean, rtol=1e-12)

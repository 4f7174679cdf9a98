"""NumPy reference: the book's softmax cross-entropy and the standard cross-entropy.

target is a one-hot float array (B, C) (logits' dtype) or int64 labels (B,).
Softmax is computed stably (row max subtracted); the gradient is in the logits' dtype,
the scalar loss is accumulated in float64 and returned as a Python float.
"""

import numpy as np


def _one_hot(target, logits):
    # target is (B,) int labels or (B, C) float -> (B, C) in logits.dtype
    if target.ndim == 2:
        return target
    y = np.zeros_like(logits)
    y[np.arange(logits.shape[0]), target] = 1
    return y


def _softmax(logits):
    # logits is (B, C) -> p (B, C), rows sum to 1
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(logits):
    # logits is (B, C) -> log p (B, C), always finite
    s = logits - logits.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def _divisor(logits, reduction):
    # "mean" divides loss and gradient by the batch size B; "sum" (the book's chapter 6) does not
    return max(logits.shape[0], 1) if reduction == "mean" else 1


def softmax_cross_entropy(logits, target, eps=1e-9, reduction="mean"):
    """Book loss: sum_{n,k}[-y log pc - (1-y) log(1-pc)] / B, grad (pc - y) / B, pc = clip(p, eps, 1-eps)."""
    # logits is (B, C), target is (B, C) one-hot or (B,) int64 -> (loss float, grad (B, C))
    B = _divisor(logits, reduction)
    y = _one_hot(target, logits)
    p = _softmax(logits)
    pc = np.clip(p, eps, 1 - eps)
    grad = (pc - y) / B
    # loss in float64 with the clip redone in float64: in float32 1 - 1e-9 rounds to 1 and log(1 - pc)
    # would be -inf; float64 keeps the book's (float64) value.
    pc64 = np.clip(p.astype(np.float64), eps, 1 - eps)
    y64 = y.astype(np.float64)
    loss = (-y64 * np.log(pc64) - (1 - y64) * np.log(1 - pc64)).sum() / B
    return float(loss), grad.astype(logits.dtype, copy=False)


def cross_entropy(logits, target, reduction="mean"):
    """Standard CE: mean_n(-sum_k y log softmax), grad (softmax - y) / B."""
    # logits is (B, C), target is (B, C) one-hot or (B,) int64 -> (loss float, grad (B, C))
    B = _divisor(logits, reduction)
    y = _one_hot(target, logits)
    logp = _log_softmax(logits)
    loss = -(y.astype(np.float64) * logp).sum() / B
    grad = (np.exp(logp) - y) / B
    return float(loss), grad.astype(logits.dtype, copy=False)

"""Softmax and the softmax cross-entropy loss, numerically stable, with the fused gradient.

For logits z (N, C) and integer labels y (N,):

    softmax(z)[n, c] = exp(z[n, c]) / sum_k exp(z[n, k])
    loss             = -(1/N) sum_n log softmax(z)[n, y[n]]
    dloss/dz         = (softmax(z) - onehot(y)) / N

Stability: softmax does not change when the same constant is subtracted from a row, so we subtract
each row's maximum first. The largest exponent is then exp(0) = 1 and nothing overflows, even for
logits in the thousands. The log-probabilities are computed as shifted - log(sum(exp(shifted))),
never as log(softmax), so a tiny probability does not become log(0) = -inf.

Not handled: class weights, label smoothing, ignore_index, soft targets.
"""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, C); every row of the result sums to 1."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits (N, C) against labels (N,) of ints in [0, C).

    Returns (loss, dlogits): loss is a Python float, dlogits has the shape and dtype of logits.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -log_probs[rows, labels].mean()

    dlogits = np.exp(log_probs)          # softmax(z)
    dlogits[rows, labels] -= 1.0         # minus the one-hot target
    dlogits = dlogits / n                # the loss is a mean over the batch
    return float(loss), dlogits

"""Softmax and the softmax cross-entropy loss, numerically stable, with the fused gradient.

For logits z (N, C) and integer labels y (N,):

    loss     = -(1/N) sum_n log softmax(z)[n, y[n]]
    dloss/dz = (softmax(z) - onehot(y)) / N

Brief, section 3: why you subtract each row's maximum first, and how to get log-probabilities
without ever taking log(0).
"""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, C); every row of the result sums to 1. Must not overflow
    for logits in the thousands."""
    raise NotImplementedError("softmax: see brief.md, section 3 (Softmax cross-entropy)")


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits (N, C) against labels (N,) of ints in [0, C).

    Returns (loss, dlogits): loss is a Python float, dlogits has the shape and dtype of logits.
    """
    raise NotImplementedError("softmax_cross_entropy: see brief.md, section 3 (Softmax cross-entropy)")
